#include "wal_names.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "error.hpp"

namespace warden::wal {

namespace {
bool all_hex(std::string_view s)
{
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

bool all_upper_hex(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'A' && c <= 'F');
    });
}

std::uint64_t hex_value(std::string_view s)
{
    std::uint64_t v = 0;
    for (char c : s) {
        int d = std::isdigit(static_cast<unsigned char>(c))
                    ? c - '0'
                    : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
        v = v * 16 + static_cast<std::uint64_t>(d);
    }
    return v;
}

std::uint64_t segments_per_xlogid(std::uint64_t seg_size)
{
    check_segment_size(seg_size, "segment size");
    return 0x100000000ULL / seg_size;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}
}  // namespace

bool valid_segment_size(std::uint64_t seg_size)
{
    return seg_size >= kMinSegmentSize && seg_size <= kMaxSegmentSize && (seg_size & (seg_size - 1)) == 0;
}

void check_segment_size(std::uint64_t seg_size, const std::string& where)
{
    if (!valid_segment_size(seg_size))
        throw Error(sqlstate::invalid_parameter_value,
                    where + ": invalid WAL segment size " + std::to_string(seg_size) +
                        " (a power of two from 1 MB to 1 GB)");
}

Lsn parse_lsn(std::string_view text)
{
    auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash > 8 ||
        text.size() - slash - 1 == 0 || text.size() - slash - 1 > 8 ||
        !all_hex(text.substr(0, slash)) || !all_hex(text.substr(slash + 1)))
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid LSN \"" + std::string(text) + "\"", "",
                    "An LSN is two hexadecimal numbers separated by a slash, e.g. 0/16B3748.");
    return (hex_value(text.substr(0, slash)) << 32) | hex_value(text.substr(slash + 1));
}

std::string format_lsn(Lsn lsn)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xffffffffU));
    return buf;
}

std::string segment_name(TimeLine tli, std::uint64_t segno, std::uint64_t seg_size)
{
    char buf[32];
    std::uint64_t per = segments_per_xlogid(seg_size);
    std::snprintf(buf, sizeof buf, "%08X%08X%08X", static_cast<unsigned>(tli),
                  static_cast<unsigned>(segno / per), static_cast<unsigned>(segno % per));
    return buf;
}

std::optional<SegmentId> parse_segment_name(std::string_view name, std::uint64_t seg_size)
{
    if (name.size() < 24 || !all_upper_hex(name.substr(0, 24)))
        return std::nullopt;
    std::uint64_t per = segments_per_xlogid(seg_size);
    std::uint64_t log = hex_value(name.substr(8, 8));
    std::uint64_t seg = hex_value(name.substr(16, 8));
    auto tli = static_cast<TimeLine>(hex_value(name.substr(0, 8)));
    if (seg >= per || tli == 0)
        return std::nullopt;
    return SegmentId{tli, log * per + seg};
}

FileKind classify(std::string_view name)
{
    if (name.size() == 24 && all_upper_hex(name))
        return FileKind::segment;
    if (name.size() == 32 && all_upper_hex(name.substr(0, 24)) && name.substr(24) == ".partial")
        return FileKind::partial_segment;
    if (name.size() == 16 && all_upper_hex(name.substr(0, 8)) && name.substr(8) == ".history")
        return FileKind::history;
    if (name.size() == 40 && all_upper_hex(name.substr(0, 24)) && name[24] == '.' &&
        all_upper_hex(name.substr(25, 8)) && name.substr(33) == ".backup")
        return FileKind::backup_label;
    return FileKind::other;
}

std::optional<std::pair<TimeLine, Lsn>> backup_history_start(std::string_view name, std::uint64_t seg_size)
{
    if (classify(name) != FileKind::backup_label)
        return std::nullopt;
    auto id = parse_segment_name(name.substr(0, 24), seg_size);
    std::uint64_t offset = hex_value(name.substr(25, 8));
    if (!id || offset >= seg_size)
        return std::nullopt;
    return std::make_pair(id->tli, segment_start(id->segno, seg_size) + offset);
}

std::string history_name(TimeLine tli)
{
    char buf[24];
    std::snprintf(buf, sizeof buf, "%08X.history", static_cast<unsigned>(tli));
    return buf;
}

std::optional<TimeLine> parse_history_name(std::string_view name)
{
    if (classify(name) != FileKind::history)
        return std::nullopt;
    return static_cast<TimeLine>(hex_value(name.substr(0, 8)));
}

std::vector<HistoryEntry> parse_history(std::string_view text)
{
    std::vector<HistoryEntry> out;
    int line_no = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        line = trim(line);
        if (line.empty() || line.front() == '#')
            continue;
        // "<tli>\t<switch lsn>\t<reason>"; the reason is free text.
        std::size_t i = 0;
        while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])))
            ++i;
        std::size_t j = i;
        while (j < line.size() && std::isspace(static_cast<unsigned char>(line[j])))
            ++j;
        std::size_t k = j;
        while (k < line.size() && !std::isspace(static_cast<unsigned char>(line[k])))
            ++k;
        auto bad = [&](const std::string& why) {
            return Error(sqlstate::data_exception,
                         "invalid timeline history line " + std::to_string(line_no) + ": " + why,
                         "line: " + std::string(line));
        };
        if (i == 0 || j == i || k == j)
            throw bad("expected a timeline ID and a switch point");
        HistoryEntry e;
        e.tli = static_cast<TimeLine>(std::stoul(std::string(line.substr(0, i))));
        e.end = parse_lsn(line.substr(j, k - j));
        e.reason = std::string(trim(line.substr(k)));
        if (!out.empty() && e.tli <= out.back().tli)
            throw bad("timeline IDs must increase");
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<TimelineSpan> timeline_chain(TimeLine newest, const std::vector<HistoryEntry>& history)
{
    std::vector<TimelineSpan> chain;
    Lsn begin = 0;
    for (const auto& e : history) {
        chain.push_back({e.tli, begin, e.end});
        begin = e.end;
    }
    chain.push_back({newest, begin, UINT64_MAX});
    return chain;
}

TimeLine timeline_for_segment(const std::vector<TimelineSpan>& chain, std::uint64_t segno,
                              std::uint64_t seg_size)
{
    check_segment_size(seg_size, "segment size");
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
        if (segment_of(it->begin, seg_size) <= segno)
            return it->tli;
    return chain.front().tli;
}

std::optional<SegmentId> first_missing_segment(const std::vector<TimelineSpan>& chain, Lsn from,
                                               std::uint64_t to_segno,
                                               const std::vector<SegmentId>& present,
                                               std::uint64_t seg_size)
{
    check_segment_size(seg_size, "segment size");
    for (std::uint64_t s = segment_of(from, seg_size); s <= to_segno; ++s) {
        SegmentId want{timeline_for_segment(chain, s, seg_size), s};
        if (!std::binary_search(present.begin(), present.end(), want))
            return want;
    }
    return std::nullopt;
}

}  // namespace warden::wal
