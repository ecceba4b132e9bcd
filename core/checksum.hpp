// The one checksum rule for migration scripts, shared by the extension and the utility.
//
// Rule: strip a leading UTF-8 byte-order mark, turn CRLF and lone CR into LF, then
// SHA-256 the bytes. Nothing else is normalised (trailing spaces and a missing final
// newline change the checksum), so a file edited on Windows and on Linux hashes the
// same, while any real edit does not.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace warden {

// Name recorded next to every checksum, so a future rule can coexist with this one.
inline constexpr const char* kChecksumAlgorithm = "sha256-bom-crlf-v1";

// Returns the normalised script text (BOM stripped, CRLF/CR -> LF).
std::string normalize_script(std::string_view text);

// Lowercase hex SHA-256 of the normalised text.
std::string script_checksum(std::string_view text);

// Lowercase hex SHA-256 of raw bytes (files in backup manifests are not normalised).
std::string sha256_hex(std::string_view bytes);

// Incremental SHA-256 for streams (backup members, WAL segments).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* data, std::size_t len);
    std::string hex_digest();  // finishes the hash; the object can't be updated after

private:
    void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of users' files
};

}  // namespace warden
