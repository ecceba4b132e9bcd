// Which backups a retention policy keeps, with the reason for each decision.
//
// Backups are ranked newest first by (timeline, stop LSN, finish time) within their
// series: one series per kind and system identifier (and database, for logical
// backups). Names and IDs never decide the order. Only the series of one system
// identifier is pruned; backups of any other system are kept and say why.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "backup_catalog.hpp"

namespace warden {

struct RetentionPolicy {
    int keep_last = 1;               // >= 1: the newest N of each series
    std::optional<int> keep_days;    // and anything younger than D days
    std::time_t now = 0;
    // The system whose backups may be deleted; empty = the system of the backup that
    // finished last.
    std::string system_identifier;
};

struct RetentionDecision {
    std::string id;
    bool keep = true;
    std::string reason;
};

// One decision per backup, newest first within each series. Throws warden::Error for
// an invalid policy or a backup whose LSN or finish time cannot be read (nothing is
// deleted when the order is unknown).
std::vector<RetentionDecision> decide_retention(const std::vector<BackupInfo>& backups,
                                                const RetentionPolicy& policy);

}  // namespace warden
