// Verifying and restoring physical backups.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "backup_catalog.hpp"

namespace warden {

// Re-reads every stored file of a physical backup: the stored checksums, the manifest's
// own checksum, every archive member against backup_manifest and every WAL segment
// against backup.json. Throws warden::Error naming the first bad file.
void verify_physical_backup(const std::string& backup_path, const BackupInfo& info, bool quiet);

struct PhysicalRestoreOptions {
    std::string target;
    // OLD=NEW pairs: OLD is a tablespace's original location or its OID.
    std::vector<std::pair<std::string, std::string>> tablespace_map;
    bool standby = false;
    std::string primary_conninfo;
    bool quiet = false;
};

struct RestoreReport {
    std::string target;
    std::uint64_t bytes = 0;
    std::uint64_t files = 0;
    std::vector<std::pair<std::string, std::string>> tablespaces;  // oid, location
};

// Refuses a non-empty target; extracts securely, checks every file, and configures the
// copy to start with archive_mode off (and as a standby when asked). On failure removes
// everything it wrote.
RestoreReport restore_physical_backup(const std::string& backup_path, const BackupInfo& info,
                                      const PhysicalRestoreOptions& opts);

}  // namespace warden
