// Removes archived WAL that no kept base backup needs (the plan is core/wal_retention).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "wal_retention.hpp"

namespace warden::walprune {

struct Result {
    wal::PrunePlan plan;
    std::size_t files = 0;      // removed, or that would be with dry_run
    std::uint64_t bytes = 0;
};

// `kept`: the physical backups retention keeps. With dry_run nothing is removed.
Result prune_wal(const std::filesystem::path& backup_dir, const std::vector<wal::KeptBackup>& kept,
                 bool dry_run);

}  // namespace warden::walprune
