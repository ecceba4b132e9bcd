// The backup catalog's files on disk: each backup folder's backup.json, read and
// written through the file-safety layer (utility/fs/safe_file.hpp). A catalog may be
// writable by an account other than the one running the command (a backup run as
// root, a catalog the server account fills), so nothing in it is followed or trusted.
#pragma once

#include <string>

#include "backup_catalog.hpp"

namespace warden {

// Every backup folder of the catalog DIR, and the folders that are not usable backups
// (".partial-*", a symlink, an unreadable or foreign backup.json, one that is a symlink
// or belongs to another account than its folder) with the reason.
CatalogListing load_catalog(const std::string& dir);
// Loads one backup by ID; throws warden::Error ("unknown backup ID") when absent.
BackupInfo load_backup(const std::string& dir, const std::string& id);

// Replaces BACKUP_DIR/backup.json atomically (an exclusive temporary file with an
// unpredictable name, fsync, rename, fsync of the folder), mode 0600 and owned by the
// folder's owner, so a root-run verify leaves the catalog readable by its owner.
void write_description(const std::string& backup_dir, const BackupInfo& info);

}  // namespace warden
