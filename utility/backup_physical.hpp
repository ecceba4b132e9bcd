// Physical backups: the whole cluster over one replication connection.
#pragma once

#include <optional>
#include <string>

#include "backup_catalog.hpp"
#include "backup_incremental.hpp"
#include "compressed_writer.hpp"

namespace warden {

struct PhysicalBackupOptions {
    std::string dir;       // the catalog folder (BACKUPS)
    std::string conninfo;  // empty: $DATABASE_URL / PG* variables
    std::string label;
    Compression compression = Compression::gzip;
    int level = 6;
    int threads = 0;  // compressor threads; 0 = one per core
    int max_rate_kb = 0;  // server-side throttling in kB/s (BASE_BACKUP MAX_RATE); 0 = none
    bool quiet = false;
    // Set: an incremental or differential backup (backup_incremental.hpp).
    std::optional<IncrementalRequest> incremental;
    bool encrypt = false;  // seal the archives with the loaded secret (backup_key.hpp)
};

// Takes a backup and returns its catalog entry once it is published. On any failure the
// partial folder is removed and warden::Error says why; the temporary replication slot
// goes away with the connection.
BackupInfo create_physical_backup(const PhysicalBackupOptions& opts);

}  // namespace warden
