// Which archived WAL files no kept base backup needs: recovery from a backup starts at
// the segment holding its start LSN, so everything older than the oldest kept backup's
// start segment can go. Timeline history files are always kept (they are tiny and
// recovery of any later timeline reads them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wal_names.hpp"

namespace warden::wal {

struct KeptBackup {
    std::string id;
    TimeLine tli = 0;
    Lsn start = 0;
};

// A run of files to delete, for the dry run: first and last segment name and why.
struct PruneRange {
    std::string first, last;
    std::vector<std::string> files;  // stored file names, .sha256 companions included
    std::string reason;
};

struct PrunePlan {
    std::vector<PruneRange> ranges;
    std::string keep_reason;  // why the rest stays (or why nothing goes)
};

// `stored` are file names in BACKUPS/wal. With no kept backup nothing is deleted.
PrunePlan plan_wal_prune(const std::vector<std::string>& stored,
                         const std::vector<KeptBackup>& kept, std::uint64_t seg_size);

}  // namespace warden::wal
