#include "block_map.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

#include "backup_paths.hpp"
#include "error.hpp"
#include "json_text.hpp"

using nlohmann::json;

namespace warden {

namespace {

constexpr std::uint16_t kPageLayoutVersion = 4;  // PG_PAGE_LAYOUT_VERSION since 8.3

bool all_digits(std::string_view s)
{
    return !s.empty() && s.size() <= 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string_view> split(std::string_view s)
{
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        std::size_t slash = s.find('/', start);
        parts.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
        if (slash == std::string_view::npos)
            return parts;
        start = slash + 1;
    }
}

// "16384" or "16384.3": a main fork segment.
bool main_fork_name(std::string_view leaf)
{
    std::size_t dot = leaf.find('.');
    if (dot == std::string_view::npos)
        return all_digits(leaf);
    return all_digits(leaf.substr(0, dot)) && all_digits(leaf.substr(dot + 1));
}

std::uint16_t read16(const unsigned char* p)
{
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

std::uint32_t read32(const unsigned char* p)
{
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

[[noreturn]] void bad_map(const std::string& why)
{
    throw Error(sqlstate::data_exception, "incremental.json: " + why);
}

}  // namespace

FileCopy copy_mode_for(std::string_view path)
{
    auto parts = split(path);
    // base/DB/REL, global/REL, pg_tblspc/TS/PG_15_CATVER/DB/REL
    bool relation_dir = (parts.size() == 3 && parts[0] == "base" && all_digits(parts[1])) ||
                        (parts.size() == 2 && parts[0] == "global") ||
                        (parts.size() == 5 && parts[0] == "pg_tblspc" && all_digits(parts[1]) &&
                         parts[2].rfind("PG_", 0) == 0 && all_digits(parts[3]));
    return relation_dir && main_fork_name(parts.back()) ? FileCopy::blocks : FileCopy::whole;
}

Lsn page_lsn(const unsigned char* page)
{
    return (static_cast<Lsn>(read32(page)) << 32) | read32(page + 4);
}

bool block_changed(const unsigned char* page, std::size_t len, std::uint64_t blkno, std::uint64_t parent_blocks,
                   Lsn parent_start)
{
    if (len != kBlockSize || blkno >= parent_blocks)
        return true;
    // PageHeaderData: pd_lsn(8) pd_checksum(2) pd_flags(2) pd_lower(2) pd_upper(2)
    // pd_special(2) pd_pagesize_version(2).
    std::uint16_t lower = read16(page + 12), upper = read16(page + 14), special = read16(page + 16);
    std::uint16_t size_version = read16(page + 18);
    if (upper == 0)
        return true;  // PageIsNew: an extension not yet initialised, or zeroes
    bool valid = size_version == (kBlockSize | kPageLayoutVersion) && lower >= 24 && lower <= upper &&
                 upper <= special && special <= kBlockSize;
    if (!valid)
        return true;
    return page_lsn(page) >= parent_start;
}

const BlockFile* BlockMap::find(std::string_view path) const
{
    for (const auto& f : files)
        if (f.path == path)
            return &f;
    return nullptr;
}

std::string block_map_to_json(const BlockMap& map)
{
    json files = json::array();
    for (const auto& f : map.files) {
        json blocks = json::array();
        for (std::size_t i = 0; i < f.blocks.size(); ++i)
            blocks.push_back(json::array({f.blocks[i], f.sha256[i]}));
        files.push_back({{"path", f.path}, {"size", f.size}, {"blocks", blocks}});
    }
    json doc = {{"format", 1},
                {"parent", map.parent},
                {"parent_start_lsn", map.parent_start_lsn},
                {"block_size", kBlockSize},
                {"files", files}};
    // One line: a large map is mostly block numbers and checksums.
    return json_text(doc, -1) + "\n";
}

BlockMap block_map_from_json(std::string_view text)
{
    BlockMap map;
    try {
        json doc = json::parse(text.begin(), text.end());
        if (!doc.is_object() || doc.value("format", 0) != 1)
            bad_map("unsupported format");
        if (doc.at("block_size").get<std::uint64_t>() != kBlockSize)
            bad_map("block size is not 8192");
        map.parent = doc.at("parent").get<std::string>();
        map.parent_start_lsn = doc.at("parent_start_lsn").get<std::string>();
        parse_lsn(map.parent_start_lsn);
        std::set<std::string> seen;
        for (const auto& f : doc.at("files")) {
            BlockFile bf;
            bf.path = f.at("path").get<std::string>();
            if (std::string why = member_path_problem(bf.path); !why.empty())
                bad_map("path \"" + printable(bf.path) + "\" " + why);
            if (copy_mode_for(bf.path) != FileCopy::blocks)
                bad_map("\"" + printable(bf.path) + "\" is not a relation's main fork");
            if (!seen.insert(bf.path).second)
                bad_map("\"" + printable(bf.path) + "\" is listed twice");
            bf.size = f.at("size").get<std::uint64_t>();
            for (const auto& b : f.at("blocks")) {
                std::uint64_t blkno = b.at(0).get<std::uint64_t>();
                std::string sha = b.at(1).get<std::string>();
                if (!bf.blocks.empty() && blkno <= bf.blocks.back())
                    bad_map(bf.path + ": blocks out of order or repeated");
                if (blkno >= block_count(bf.size))
                    bad_map(bf.path + ": block " + std::to_string(blkno) + " lies beyond the file's " +
                            std::to_string(bf.size) + " bytes");
                if (sha.size() != 64)
                    bad_map(bf.path + ": block " + std::to_string(blkno) + " has no SHA-256");
                bf.blocks.push_back(blkno);
                bf.sha256.push_back(std::move(sha));
            }
            map.files.push_back(std::move(bf));
        }
    } catch (const json::exception& e) {
        bad_map(e.what());
    } catch (const Error& e) {
        if (std::string(e.what()).rfind("incremental.json", 0) == 0)
            throw;
        bad_map(e.what());
    }
    return map;
}

std::string block_member_name(std::size_t file_index, std::uint64_t blkno)
{
    return std::to_string(file_index) + "/" + std::to_string(blkno);
}

bool parse_block_member_name(std::string_view name, std::size_t& file_index, std::uint64_t& blkno)
{
    std::size_t slash = name.find('/');
    if (slash == std::string_view::npos)
        return false;
    std::string_view a = name.substr(0, slash), b = name.substr(slash + 1);
    if (!all_digits(a) || !all_digits(b) || (a.size() > 1 && a[0] == '0') || (b.size() > 1 && b[0] == '0'))
        return false;
    file_index = std::stoull(std::string(a));
    blkno = std::stoull(std::string(b));
    return true;
}

}  // namespace warden
