// The secret of encrypted backups (docs/backup.md, "Encryption at rest"): read once per
// command from --key-file FILE, else $WARDEN_BACKUP_PASSPHRASE; never from argv.
// With encryption switched on, every archive CompressedWriter writes is sealed; every
// archive ArchiveFileReader finds sealed is opened with it.
#pragma once

#include <string>

#include "backup_catalog.hpp"

namespace warden {

// Loads the secret: the key file's bytes (one trailing newline dropped) when key_file is
// given, else the environment variable; throws warden::Error when neither or empty.
void load_backup_secret(const std::string& key_file);
// Like load_backup_secret, but only if a key file is given or the variable is set.
void load_backup_secret_if_any(const std::string& key_file);
// nullptr when none was loaded.
const std::string* backup_secret();

// Switches sealing of new archives on (a secret must be loaded) and records in INFO
// how to recognise the key again (a salt and a PBKDF2 key check, never the key).
void start_encrypting(BackupInfo& info);
bool encrypting();

// For an encrypted backup: throws unless a secret is loaded and matches the key check.
void require_backup_key(const BackupInfo& info);

}  // namespace warden
