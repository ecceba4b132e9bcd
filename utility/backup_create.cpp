#include "backup_create.hpp"

#include "backup_logical.hpp"
#include "backup_physical.hpp"

namespace warden {

BackupInfo create_backup(const BackupRequest& req)
{
    if (req.logical) {
        LogicalBackupOptions o;
        o.dir = req.dir;
        o.conninfo = req.conninfo;
        o.database = req.database;
        o.label = req.label;
        o.compression = req.compression;
        o.level = req.level;
        o.jobs = req.jobs;
        o.quiet = req.quiet;
        o.encrypt = req.encrypt;
        return create_logical_backup(o);
    }
    PhysicalBackupOptions o;
    o.dir = req.dir;
    o.conninfo = req.conninfo;
    o.label = req.label;
    o.compression = req.compression;
    o.level = req.level;
    o.threads = req.jobs;
    o.max_rate_kb = req.max_rate_kb;
    o.quiet = req.quiet;
    o.incremental = req.incremental;
    o.encrypt = req.encrypt;
    return create_physical_backup(o);
}

}  // namespace warden
