// Chains of physical backups: a full backup, then incremental and differential ones
// each naming its parent. Which parent a new backup gets, which backups a restore
// needs, and which parents retention must keep. Pure logic on catalog entries.
#pragma once

#include <string>
#include <vector>

#include "backup_catalog.hpp"
#include "retention.hpp"

namespace warden {

enum class ParentKind { latest, latest_full };

// The parent for a new incremental (latest: the newest physical backup) or
// differential (latest_full: the newest full one) backup of SYSTEM_IDENTIFIER (any when
// empty) in the catalog, among those whose last verification did not fail; ranked by (timeline, stop LSN, finish time).
// Throws warden::Error when there is none.
const BackupInfo& choose_parent(const std::vector<BackupInfo>& backups, ParentKind kind,
                                const std::string& system_identifier);

// The backups a restore of ID reads, the full backup first and ID last. Throws
// warden::Error for an unknown ID, a missing parent, a parent of another system or
// timeline, a parent that is not older, or a loop.
std::vector<const BackupInfo*> resolve_chain(const std::vector<BackupInfo>& backups, const std::string& id);

// Turns "delete" into "keep" for every backup that a kept backup needs as an ancestor,
// saying which one needs it. Decisions are matched by ID.
void keep_needed_parents(const std::vector<BackupInfo>& backups, std::vector<RetentionDecision>& decisions);

}  // namespace warden
