// The backup_manifest a PostgreSQL 15 server sends with BASE_BACKUP (MANIFEST 'yes'):
// one entry per file of the data directory with its size and checksum, the WAL range the
// backup needs, and a SHA-256 of the manifest itself ("Manifest-Checksum").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lsn.hpp"

namespace warden {

struct ManifestFile {
    std::string path;  // relative to the data directory; tablespaces under pg_tblspc/OID/
    std::uint64_t size = 0;
    std::string checksum_algorithm;  // "SHA256", "CRC32C", ... or "NONE"
    std::string checksum;            // lowercase hex, empty when NONE
};

struct ManifestWalRange {
    std::uint32_t timeline = 0;
    Lsn start_lsn = 0;
    Lsn end_lsn = 0;
};

class BackupManifest {
public:
    // Parses the manifest and checks its own checksum; throws warden::Error naming what
    // is wrong (bad JSON, unknown version, checksum mismatch, duplicate path).
    static BackupManifest parse(std::string_view text);

    const ManifestFile* find(std::string_view path) const;
    const std::vector<ManifestFile>& files() const { return files_; }
    const std::vector<ManifestWalRange>& wal_ranges() const { return wal_ranges_; }
    int version() const { return version_; }

private:
    int version_ = 0;
    std::vector<ManifestFile> files_;
    std::vector<ManifestWalRange> wal_ranges_;
    std::unordered_map<std::string, std::size_t> index_;
};

// Checks "Manifest-Checksum": the SHA-256 of every byte up to and including the newline
// that precedes the line holding it. Throws warden::Error on mismatch or bad layout.
void check_manifest_checksum(std::string_view text);

}  // namespace warden
