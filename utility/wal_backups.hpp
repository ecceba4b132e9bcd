// Where WAL archiving meets the backup catalog: the start points `wal verify` checks
// from, the recovery target of `warden restore`, and the WAL `warden backup prune` removes.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "backup_catalog.hpp"
#include "recovery_settings.hpp"
#include "retention.hpp"
#include "wal_names.hpp"

namespace warden::walbackups {

// The timeline and start LSN of every backup the archive must serve: physical backups of
// the catalog (of the archive's system), and backup history files
// (<segment>.<offset>.backup, written by the server through `wal push`).
std::vector<std::pair<wal::TimeLine, wal::Lsn>> kept_backup_starts(const std::filesystem::path& backup_dir);

// True when any of --target-time/-lsn/-xid/--latest was given to `warden restore`.
bool has_target(const recovery::Target& target);

// Checked before anything is restored: one valid target, a physical backup, no --standby.
void check_restore_target(const recovery::Target& target, const BackupInfo& backup, bool standby);

// The key file restore_command must pass to `wal fetch` (absolute), or "" when the WAL
// archive is not encrypted. Checked before anything is written: an encrypted archive needs
// --key-file (a passphrase in the environment does not reach the server) with the right
// key. `for_wal_only` (recovery-settings): a key file given to a plain archive is refused;
// else it may be the backup's key and is ignored there.
std::string wal_restore_key(const std::string& backup_dir, const std::string& key_file, bool for_wal_only);

// After the backup is in `datadir`: restore_command through `wal fetch`, the target,
// recovery.signal. Returns the description for the summary.
std::string apply_restore_target(const std::string& datadir, const std::string& backup_dir,
                                 const recovery::Target& target, const std::string& wal_key_file = {});

// `warden backup prune`: removes (or with dry_run lists) the archived WAL older than the
// start of the oldest physical backup retention keeps. Prints one line per range (text) or
// returns the JSON to add to the prune output. Nothing happens without a WAL archive.
nlohmann::json prune_wal(const std::string& backup_dir, const CatalogListing& listing,
                         const std::vector<RetentionDecision>& decisions, bool dry_run, bool json);

}  // namespace warden::walbackups
