// The names a backup folder hands to restore and verify, checked before any of them
// becomes a path: archive members and manifest entries, tablespace OIDs and locations,
// stored archive names. Every function returns an empty string when the name is fine
// and otherwise the reason, phrased to follow the name in a one-line message.
#pragma once

#include <string>
#include <string_view>

namespace warden {

// A relative path in the canonical form PostgreSQL's BASE_BACKUP writes: components
// separated by one '/', none empty, "." or "..", no leading '/', no NUL.
std::string member_path_problem(std::string_view path);

// A tablespace OID as PostgreSQL prints it: decimal digits, no leading zero, 1..2^32-1.
std::string tablespace_oid_problem(std::string_view oid);

// A tablespace location: an absolute path in canonical form (no "..", "." or empty
// components, no trailing '/'), not the root directory.
std::string location_problem(std::string_view location);

// True when `inner` is `outer` or lies beneath it; both canonical absolute paths.
bool path_within(std::string_view inner, std::string_view outer);

// True when `name` is STEM.tar, STEM.tar.gz or STEM.tar.zst.
bool is_archive_name(std::string_view name, std::string_view stem);

// The name for a message: control characters shown as \xNN, so the reason stays on
// one line whatever a hostile archive calls its members.
std::string printable(std::string_view name);

}  // namespace warden
