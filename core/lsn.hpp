// PostgreSQL write-ahead log positions ("16/B374D848") and segment file names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warden {

using Lsn = std::uint64_t;

// Parses "X/Y" (hex halves, as pg_current_wal_lsn() prints it); throws warden::Error.
Lsn parse_lsn(std::string_view text);
std::string format_lsn(Lsn lsn);

// The WAL segment file name holding `lsn` on `timeline` ("000000010000000000000003").
std::string wal_segment_name(std::uint32_t timeline, Lsn lsn, std::uint64_t segment_size);

}  // namespace warden
