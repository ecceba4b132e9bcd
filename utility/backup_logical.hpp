// Logical backups of one database through the real pg_dump and pg_restore.
#pragma once

#include <cstddef>
#include <string>

#include "backup_catalog.hpp"
#include "compressed_writer.hpp"

namespace warden {

struct LogicalBackupOptions {
    std::string dir, conninfo, database, label;
    Compression compression = Compression::gzip;
    int level = 6;
    int jobs = 0;
    bool quiet = false;
    // Sealed with the loaded backup secret: pg_dump -Fc through a pipe into dump.enc
    // (sealed_dump.hpp) instead of -Fd -j N; restored without -j (pg_restore reads a pipe).
    bool encrypt = false;
};

// pg_dump -Fd -j N from a snapshot exported by a REPEATABLE READ transaction that also
// records the exact row count of every table; pg_dumpall --globals-only beside it.
BackupInfo create_logical_backup(const LogicalBackupOptions& opts);

// Stored checksums, then a full read with pg_restore -f /dev/null.
void verify_logical_backup(const std::string& backup_path, const BackupInfo& info, bool quiet);

struct LogicalRestoreOptions {
    std::string conninfo, database;
    bool clean = false;
    int jobs = 0;
    bool quiet = false;
};

struct LogicalRestoreReport {
    std::size_t tables_checked = 0;
};

// Refuses a non-empty database unless clean; pg_restore -j N --exit-on-error; then
// compares every table's row count with the recorded one.
LogicalRestoreReport restore_logical_backup(const std::string& backup_path, const BackupInfo& info,
                                            const LogicalRestoreOptions& opts);

}  // namespace warden
