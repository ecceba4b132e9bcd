#include "lsn.hpp"

#include <cstdio>

#include "error.hpp"

namespace warden {

namespace {
bool parse_hex32(std::string_view s, std::uint32_t& out)
{
    if (s.empty() || s.size() > 8)
        return false;
    std::uint32_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return false;
        v = v * 16 + static_cast<std::uint32_t>(d);
    }
    out = v;
    return true;
}
}  // namespace

Lsn parse_lsn(std::string_view text)
{
    auto slash = text.find('/');
    std::uint32_t hi = 0, lo = 0;
    if (slash == std::string_view::npos || !parse_hex32(text.substr(0, slash), hi) ||
        !parse_hex32(text.substr(slash + 1), lo))
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid WAL position \"" + std::string(text) + "\"", {},
                    "A WAL position looks like 16/B374D848.");
    return (static_cast<Lsn>(hi) << 32) | lo;
}

std::string format_lsn(Lsn lsn)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xffffffffu));
    return buf;
}

std::string wal_segment_name(std::uint32_t timeline, Lsn lsn, std::uint64_t segment_size)
{
    if (segment_size == 0 || (segment_size & (segment_size - 1)) != 0)
        throw Error(sqlstate::invalid_parameter_value, "WAL segment size must be a power of two");
    std::uint64_t segno = lsn / segment_size;
    std::uint64_t per_id = 0x100000000ULL / segment_size;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08X%08X%08X", timeline,
                  static_cast<unsigned>(segno / per_id), static_cast<unsigned>(segno % per_id));
    return buf;
}

}  // namespace warden
