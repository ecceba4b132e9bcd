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
    std::string format = "auto";  // --format: auto|golang-migrate|flyway|dbmate|suffixed
    Layout layout = Layout::automatic;  // the folder's layout, once load_files has read it
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
    // adopt
    std::string from;  // flyway | golang-migrate | dbmate | node-pg-migrate
    std::string from_table;  // the tool's history table, when not its default
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

// The folder named by --dir, checked and ordered; notes its layout in options().layout
// and its repeatable migrations in repeatables().
std::vector<MigrationFile> load_files();

// The repeatable migrations (Flyway's R__) of the folder load_files read, in name order.
std::vector<RepeatableFile>& repeatables();

// Each repeatable migration of the folder with "ok" (the checksum last applied) or
// "pending" (new or changed); empty on a 1.1 extension.
std::vector<std::pair<const RepeatableFile*, std::string>> repeatable_states(Connection& conn);

// For commands that need no file (down, baseline, repair): reads --dir when it is a
// folder, for its layout (how --target and versions are written). Errors are ignored.
std::vector<MigrationFile> note_folder_layout();

// A ledger version as the folder's file writes it (Flyway's 1.10 for its ledger digits);
// the ledger's when no file has it.
std::string shown_of(const std::string& ledger_version, const std::vector<MigrationFile>& files);

struct VerifyRow {
    std::string version, name, state, file_checksum, applied_checksum;
    std::string shown;  // the version as the file writes it (the ledger's when no file)
};

// The version as its file writes it: Flyway's 1.2.10 rather than the ledger's digits.
const std::string& shown_version(const MigrationFile& m);

// --target as the ledger keys it: the folder's Flyway version turned into its ledger
// digits; else digits. Usage error (exit 2) otherwise.
std::string ledger_target(const std::string& target);

// Waits for the migration lock at session level (warden.try_migration_lock, polled with
// growing pauses up to --lock-timeout, in no transaction: see docs/migrations.md) and
// keeps it until the connection ends. Nothing on a 1.1 extension, whose functions lock.
void take_migration_lock(Connection& conn);

// The down script as stored with the migration: marked "-- warden:no-transaction" when its
// layout says it runs outside a transaction (.autocommit., dbmate's transaction:false), so
// that the ledger knows when it rolls back.
const std::string& stored_down_sql(const MigrationFile& m);

// Runs a script statement by statement at top level (the non-transactional protocol);
// on a failure records it with warden.fail_migration(ledger_version) and throws.
void run_statements(Connection& conn, const std::string& ledger_version, const std::string& what,
                    const std::string& script);

// The folder against the ledger, in one query (warden.verify_migration_lines).
std::vector<VerifyRow> verify(Connection& conn, const std::vector<MigrationFile>& files);

// Throws when the ledger and the folder disagree about the past (failed, interrupted or
// modified migrations); warns about applied migrations without a file.
void check_history(const std::vector<VerifyRow>& rows);

// Prints "warden: message" and leaves with exit code 2.
[[noreturn]] void usage_error(const std::string& message);

int run_up();
int run_down();
int run_adopt();

}  // namespace warden::cli::migrate
