// POD-only entry points into the core's checksum rule, for PostgreSQL-side files.
#pragma once

#include <cstddef>

namespace warden::glue {

// Writes the lowercase hex SHA-256 of the normalised script (64 chars + NUL) to out.
void script_checksum(const char* data, std::size_t len, char out[65]);

}  // namespace warden::glue
