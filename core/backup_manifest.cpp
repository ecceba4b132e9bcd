#include "backup_manifest.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "backup_paths.hpp"
#include "checksum.hpp"
#include "error.hpp"

namespace warden {

namespace {
[[noreturn]] void bad_manifest(const std::string& why)
{
    throw Error(sqlstate::data_exception, "invalid backup manifest: " + why);
}

std::string lowercase(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Names that are not valid UTF-8 come hex-encoded as "Encoded-Path".
std::string decode_hex(const std::string& hex)
{
    if (hex.size() % 2 != 0)
        bad_manifest("odd length in Encoded-Path");
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        bad_manifest("bad hex digit in Encoded-Path");
    };
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2)
        out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    return out;
}
}  // namespace

void check_manifest_checksum(std::string_view text)
{
    // The checksummed part ends at the newline before the last line.
    std::size_t last = text.rfind('\n');
    if (last == std::string_view::npos)
        bad_manifest("no line breaks");
    std::size_t body_end = last;
    // A manifest ends with a newline after the closing brace; skip it.
    if (last + 1 == text.size()) {
        if (last == 0)
            bad_manifest("too short");
        body_end = text.rfind('\n', last - 1);
        if (body_end == std::string_view::npos)
            bad_manifest("too few lines");
    }
    std::string_view last_line = text.substr(body_end + 1);
    static constexpr std::string_view kKey = "\"Manifest-Checksum\":";
    if (last_line.substr(0, kKey.size()) != kKey)
        bad_manifest("the last line does not hold \"Manifest-Checksum\"");
    auto q1 = last_line.find('"', kKey.size());
    auto q2 = q1 == std::string_view::npos ? q1 : last_line.find('"', q1 + 1);
    if (q2 == std::string_view::npos)
        bad_manifest("unreadable Manifest-Checksum");
    std::string expected = lowercase(std::string(last_line.substr(q1 + 1, q2 - q1 - 1)));
    std::string actual = sha256_hex(text.substr(0, body_end + 1));
    if (expected != actual)
        throw Error(sqlstate::data_exception, "backup manifest checksum mismatch",
                    "recorded " + expected + ", computed " + actual);
}

BackupManifest BackupManifest::parse(std::string_view text)
{
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        bad_manifest(e.what());
    }
    if (!doc.is_object())
        bad_manifest("not a JSON object");
    check_manifest_checksum(text);

    BackupManifest m;
    try {
        m.version_ = doc.at("PostgreSQL-Backup-Manifest-Version").get<int>();
        if (m.version_ != 1)
            bad_manifest("unsupported version " + std::to_string(m.version_));
        for (const auto& f : doc.at("Files")) {
            ManifestFile file;
            if (f.contains("Path"))
                file.path = f.at("Path").get<std::string>();
            else
                file.path = decode_hex(f.at("Encoded-Path").get<std::string>());
            // Restore and verify write and compare by these names and sizes.
            if (std::string why = member_path_problem(file.path); !why.empty())
                bad_manifest("path \"" + printable(file.path) + "\" " + why);
            if (!f.at("Size").is_number_unsigned())
                bad_manifest("size of " + printable(file.path) + " is not a non-negative integer");
            file.size = f.at("Size").get<std::uint64_t>();
            file.checksum_algorithm = f.value("Checksum-Algorithm", "NONE");
            file.checksum = lowercase(f.value("Checksum", ""));
            if (!m.index_.emplace(file.path, m.files_.size()).second)
                bad_manifest("duplicate path " + printable(file.path));
            m.files_.push_back(std::move(file));
        }
        if (doc.contains("WAL-Ranges")) {
            for (const auto& w : doc.at("WAL-Ranges")) {
                ManifestWalRange r;
                r.timeline = w.at("Timeline").get<std::uint32_t>();
                r.start_lsn = parse_lsn(w.at("Start-LSN").get<std::string>());
                r.end_lsn = parse_lsn(w.at("End-LSN").get<std::string>());
                m.wal_ranges_.push_back(r);
            }
        }
    } catch (const nlohmann::json::exception& e) {
        bad_manifest(e.what());
    }
    return m;
}

const ManifestFile* BackupManifest::find(std::string_view path) const
{
    auto it = index_.find(std::string(path));
    return it == index_.end() ? nullptr : &files_[it->second];
}

}  // namespace warden
