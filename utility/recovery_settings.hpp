// The recovery settings a restored cluster needs to replay WAL from the archive to a
// target: restore_command through `warden wal fetch`, recovery_target_*, recovery.signal.
// Used by `warden restore` and `warden wal recovery-settings`.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace warden::recovery {

struct Target {
    std::string time;             // recovery_target_time (a timestamptz literal)
    std::string lsn;              // recovery_target_lsn
    std::string xid;              // recovery_target_xid
    bool latest = false;          // replay everything the archive has
    std::string action = "promote";  // recovery_target_action: promote | pause | shutdown
};

// A postgresql.conf string literal ('' and \\ inside).
std::string conf_quote(const std::string& s);

// --target-time, --target-lsn, --target-xid, --latest, --target-action on a command.
void add_target_options(CLI::App* cmd, Target& target);

// "time 2026-11-23 03:00:00+00 then promote", for messages and JSON.
std::string describe(const Target& target);

// Throws warden::Error (22023) unless exactly one target is given and the action is valid.
void validate(const Target& target);

// Rewrites postgresql.auto.conf in `datadir` without earlier restore_command and
// recovery_target* lines, appends the new ones, and creates recovery.signal.
// `warden_bin` is the utility recovery will run (absolute path); a non-empty `key_file`
// (absolute) is passed to `wal fetch` as --key-file for an encrypted archive.
void write_recovery_settings(const std::filesystem::path& datadir,
                             const std::filesystem::path& backup_dir, const Target& target,
                             const std::filesystem::path& warden_bin, const std::string& key_file = {});

// The absolute path of the running `warden` executable.
std::filesystem::path self_executable();

}  // namespace warden::recovery
