// One entry point for taking a backup of either kind, for `warden backup create` and for
// commands that take a backup first (`warden migrate up --backup`).
#pragma once

#include <optional>
#include <string>

#include "backup_catalog.hpp"
#include "backup_incremental.hpp"
#include "compressed_writer.hpp"

namespace warden {

struct BackupRequest {
    std::string dir;       // catalog folder
    std::string conninfo;  // empty: $DATABASE_URL / PG* variables
    std::string label;
    bool logical = false;
    std::string database;  // logical only
    Compression compression = Compression::gzip;
    int level = 6;
    int jobs = 0;  // 0 = one per core
    int max_rate_kb = 0;  // physical: throttle the server to this many kB/s
    bool quiet = false;
    std::optional<IncrementalRequest> incremental;  // physical only
    bool encrypt = false;                             // physical only; the secret is loaded
};

// Takes the backup and returns its published catalog entry; throws warden::Error (and
// leaves no catalog entry) on failure. The caller records it in the database with
// record_backup_in_database() from backup_common.hpp if it wants to.
BackupInfo create_backup(const BackupRequest& req);

}  // namespace warden
