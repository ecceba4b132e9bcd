// Where kept backups start in the WAL: what `wal verify` checks from and what WAL
// pruning must keep.
#pragma once

#include <filesystem>
#include <utility>
#include <vector>

#include "wal_names.hpp"

namespace warden::walbackups {

// The timeline and start LSN of every backup the archive must serve: backup history
// files (<segment>.<offset>.backup, written by the server through `wal push`).
std::vector<std::pair<wal::TimeLine, wal::Lsn>> kept_backup_starts(const std::filesystem::path& backup_dir);

}  // namespace warden::walbackups
