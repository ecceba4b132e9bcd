// Restore drills: a backup is only as good as the last time it was restored.
#pragma once

#include <memory>
#include <string>

#include "backup_catalog.hpp"

namespace warden {

struct DrillOptions {
    std::string conninfo;  // logical: the server to create the scratch database on
    std::string scratch;   // physical: where the scratch cluster goes ("" = a temp folder)
    std::string os_user;   // physical, as root: the account the scratch server runs as
    bool quiet = false;
};

struct DrillReport {
    bool ok = false;
    double restore_seconds = 0;  // restore until the copy accepts connections
    double check_seconds = 0;
    std::string detail;
};

// Physical: restore into a scratch cluster on a private socket, start it, run
// pg_amcheck --heapallindexed on every database, stop it and remove it. Run as root, the
// scratch server runs as opts.os_user, else the backup folder's owner, else `postgres`.
// Logical: restore into a scratch database and compare row counts, then drop it.
// The measured time to restore and the outcome are written to backup.json.
DrillReport drill_backup(const std::string& root, BackupInfo info, const DrillOptions& opts);

class ServerProcess;

// A physical backup (chain) restored into a scratch folder and started as the drill does
// (private socket, no TCP, as opts.os_user when root); stopped and removed when destroyed.
// For restoring one table or database out of a physical backup.
class ScratchServer {
public:
    ScratchServer(const std::string& root, const BackupInfo& info, const DrillOptions& opts);
    ~ScratchServer();
    ScratchServer(const ScratchServer&) = delete;
    ScratchServer& operator=(const ScratchServer&) = delete;
    // A conninfo reaching DATABASE as the bootstrap superuser.
    std::string conninfo(const std::string& database) const;
    const std::string& folder() const { return scratch_; }

private:
    std::string conninfo_for(const std::string& database, const std::string& user) const;
    void stop() noexcept;
    std::string scratch_;
    std::string superuser_;
    std::unique_ptr<ServerProcess> server_;
};

}  // namespace warden
