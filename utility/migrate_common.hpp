// Shared by the `warden migrate` files: options, the connection, the folder against the
// ledger, and the up/down commands (migrate_up.cpp).
#pragma once

#include <string>
#include <vector>

#include "commands.hpp"
#include "connection.hpp"
#include "migration_files.hpp"

namespace warden::cli::migrate {

struct MigrateOptions {
    ConnectionOptions conn;
    std::string dir = "migrations";
    bool follow_symlinks = false;  // read .sql symlinks that lead out of --dir
    std::string target;
    std::string lock_timeout;
    bool dry_run = false;
    bool allow_out_of_order = false;
    bool json = false;
    bool quiet = false;
    // up --backup: a verified-to-exist backup first, or no migration at all
    bool backup = false;
    std::string backup_dir;
    std::string backup_kind = "logical";
    // create
    std::string name;
    bool sequential = false;
    // baseline, repair
    std::string version;
    std::string resolution = "retry";
    // history
    int limit = 50;
};

// The parsed options of the one command being run.
MigrateOptions& options();

// A progress line on stderr, only on a terminal and without --quiet or --json.
void progress(const std::string& line);

// Versions are keyed without leading zeros, as the ledger compares them.
std::string version_key(const std::string& v);
std::string label(const std::string& version, const std::string& name);

// Connects and checks that pg_warden is installed; applies --lock-timeout.
Connection connect_ledger();

// The folder named by --dir, checked and ordered.
std::vector<MigrationFile> load_files();

struct VerifyRow {
    std::string version, name, state, file_checksum, applied_checksum;
};

// The folder against the ledger, in one query (warden.verify_migration_lines).
std::vector<VerifyRow> verify(Connection& conn, const std::vector<MigrationFile>& files);

// Throws when the ledger and the folder disagree about the past (failed, interrupted or
// modified migrations); warns about applied migrations without a file.
void check_history(const std::vector<VerifyRow>& rows);

// Prints "warden: message" and leaves with exit code 2.
[[noreturn]] void usage_error(const std::string& message);

int run_up();
int run_down();

}  // namespace warden::cli::migrate
