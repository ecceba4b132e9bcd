// Verifying and restoring physical backups.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backup_catalog.hpp"
#include "backup_manifest.hpp"

namespace warden {

// Re-reads every stored file of a physical backup: the stored checksums, the manifest's
// own checksum, every archive member against backup_manifest and every WAL segment
// against backup.json. Throws warden::Error naming the first bad file.
void verify_physical_backup(const std::string& backup_path, const BackupInfo& info, bool quiet);

class RestoreDir;

struct PhysicalRestoreOptions {
    std::string target;
    // OLD=NEW pairs: OLD is a tablespace's original location or its OID.
    std::vector<std::pair<std::string, std::string>> tablespace_map;
    bool standby = false;
    std::string primary_conninfo;
    bool quiet = false;
    // Restoring a chain: called once the full backup's files are written and checked,
    // before the copy is configured and pg_control put in place; a failure in it
    // removes everything like any other. Gets the target and the tablespace folders.
    std::function<void(RestoreDir& target, const std::map<std::string, RestoreDir*>& tablespaces)> apply_chain;
    std::string restored_id;  // named in postgresql.auto.conf; default: the backup's ID
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

// The stored backup_manifest, checked against backup.json's size and its own checksum.
BackupManifest read_backup_manifest(const std::string& backup_path, const BackupInfo& info);
// Checks every name backup.json gives before any becomes a path (full backups' layout).
void check_physical_layout(const BackupInfo& info);

}  // namespace warden
