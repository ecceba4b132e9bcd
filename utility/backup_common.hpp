// What physical and logical backups share: the partial folder that becomes a backup
// only when complete, interruption by signals, and the record kept in the database.
#pragma once

#include <optional>
#include <string>

#include "backup_catalog.hpp"
#include "catalog_files.hpp"
#include "connection.hpp"

namespace warden {

// BACKUPS/.partial-ID while running; renamed to BACKUPS/ID once everything is on disk.
struct BackupFolder {
    std::string root;
    std::string id;
    std::string partial;  // full path of the partial folder
    std::string final_path() const { return root + "/" + id; }
};

// Creates ROOT if needed (0700), picks a fresh ID and creates the partial folder (0700,
// holding the pid of this process, so prune can tell an abandoned one from a running one).
// Sets the process umask to 077, for the files child processes write into the folder.
BackupFolder start_backup_folder(const std::string& root);
// Writes backup.json last, fsyncs, renames the folder into place and fsyncs ROOT.
void publish_backup_folder(const BackupFolder& folder, const BackupInfo& info);
// An empty 0600 file / 0700 folder NAME in the partial folder, for a child process to
// write into: pg_dump and pg_dumpall would create theirs with the umask's mode (0644),
// and globals.sql may hold password verifiers.
void reserve_private_file(const BackupFolder& folder, const std::string& name);
void reserve_private_dir(const BackupFolder& folder, const std::string& name);
// Removes a partial folder after a failure.
void discard_backup_folder(const BackupFolder& folder) noexcept;
// True when a .partial-* folder belongs to no running process.
bool partial_folder_abandoned(const std::string& path);

// SHA-256 of a file's bytes.
std::string file_sha256(const std::string& path);
// The stored files as backup.json lists them, each checksummed as stored; throws
// warden::Error naming the first missing, truncated or changed one.
void check_stored_files(const std::string& backup_path, const BackupInfo& info);

void fsync_file(const std::string& path);
void fsync_dir(const std::string& path);
void remove_tree(const std::string& path) noexcept;

// SIGINT and SIGTERM set a flag that long loops check, so an interrupted run removes
// its partial folder and says so instead of dying half-way.
void install_interrupt_handlers();
void throw_if_interrupted();

std::string now_iso8601();
double seconds_since(double start);
double monotonic_seconds();

// Where a live connection went, for the catalog: host, port, user and database as
// libpq resolved them (so PG* variables are recorded too), never the password.
std::string describe_connection(PGconn* conn);

// The version of the last migration applied per pg_warden's ledger, when it has one.
std::optional<std::string> ledger_version(Connection& conn);

// Records a backup / a verification through warden.record_backup(...) when the
// extension is installed in the database conninfo points at (for a logical backup: in
// the database it was taken of, on that server). Never fails the command:
// returns a note for the user when it could not record.
std::optional<std::string> record_backup_in_database(const std::string& conninfo, const BackupInfo& info);
std::optional<std::string> record_verification_in_database(const std::string& conninfo,
                                                           const BackupInfo& info, bool ok,
                                                           const std::string& detail);

}  // namespace warden
