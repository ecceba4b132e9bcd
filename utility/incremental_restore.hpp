// Restoring and verifying chains of physical backups: a full backup and the
// incremental or differential backups on top of it (docs/backup.md).
#pragma once

#include <string>

#include "backup_catalog.hpp"
#include "backup_restore.hpp"

namespace warden {

// Restores BACKUP from the catalog DIR: a full backup as restore_physical_backup does;
// an incremental one by restoring its full backup and applying every link after it, in
// order, inside the same restore (every whole file checked against its link's
// backup_manifest, every stored block against its SHA-256 in incremental.json, files
// the newer link no longer has removed). pg_control is put in place last.
RestoreReport restore_backup_chain(const std::string& dir, const BackupInfo& backup, const PhysicalRestoreOptions& opts);

// Verifies BACKUP and, for an incremental one, every backup of its chain. Throws
// warden::Error naming the backup and the first bad file or block.
void verify_backup_chain(const std::string& dir, const BackupInfo& backup, bool quiet);

}  // namespace warden
