// `warden wal receive`: streams WAL from a permanent physical replication slot into the
// WAL archive, the way pg_receivewal does, with compression and checksums.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace warden::walreceiver {

inline constexpr const char* kDefaultSlot = "warden_receiver";

struct Options {
    std::filesystem::path backup_dir;
    std::string conninfo;
    std::string slot = kDefaultSlot;
    std::string application_name;  // empty: the slot name
    bool synchronous = false;       // fsync and report the flush position after every write
    int status_interval_ms = 10000; // standby status updates at least this often
    int fsync_interval_ms = 1000;   // without --synchronous, fsync (and report) this often
    int max_retry_delay_ms = 30000;
    bool no_loop = false;           // exit when the connection fails instead of retrying
    bool verbose = false;
    // A remote repository (s3://): called with each file the receiver finished in its
    // local folder (a full segment, a timeline's last .partial, a timeline history) to
    // push it there; a finished segment is then removed locally. Failures are retried
    // with backoff while streaming goes on into the local folder.
    std::function<void(const std::string& name, const std::string& bytes)> ship;
    std::string ship_target;  // the repository, for messages
};

// Runs until SIGINT/SIGTERM (returns 0) or an error it must not ride out, such as a full
// disk or a folder belonging to another cluster (throws warden::Error).
int run(const Options& options);

}  // namespace warden::walreceiver
