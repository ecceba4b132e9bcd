// POD-only entry to the core's migration-file rules, for PostgreSQL-side files.
#pragma once

#include <cstddef>

namespace warden::glue {

// True when the script carries "-- warden:no-transaction" in its first lines. Throws
// warden::Error (22023) naming `label` on an unknown directive.
bool script_no_transaction(const char* data, std::size_t len, const char* label);

}  // namespace warden::glue
