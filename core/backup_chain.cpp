#include "backup_chain.hpp"

#include <map>
#include <set>
#include <tuple>

#include "error.hpp"
#include "lsn.hpp"

namespace warden {

namespace {
Lsn lsn_or_zero(const std::string& text)
{
    try {
        return parse_lsn(text);
    } catch (const Error&) {
        return 0;
    }
}

const BackupInfo* by_id(const std::vector<BackupInfo>& backups, const std::string& id)
{
    for (const auto& b : backups)
        if (b.id == id)
            return &b;
    return nullptr;
}
}  // namespace

const BackupInfo& choose_parent(const std::vector<BackupInfo>& backups, ParentKind kind,
                                const std::string& system_identifier)
{
    const BackupInfo* best = nullptr;
    auto rank = [](const BackupInfo& b) {
        return std::make_tuple(b.timeline, lsn_or_zero(b.stop_lsn), b.finished_at, b.id);
    };
    for (const auto& b : backups) {
        if (b.kind != "physical" || b.verify_failed() || b.status != "complete")
            continue;
        if (!system_identifier.empty() && b.system_identifier != system_identifier)
            continue;
        if (kind == ParentKind::latest_full && !b.parent.empty())
            continue;
        if (!best || rank(b) > rank(*best))
            best = &b;
    }
    if (!best)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    kind == ParentKind::latest_full ? "no full physical backup to take a differential backup against"
                                                    : "no physical backup to take an incremental backup against",
                    {}, "Take a full backup first: warden backup create --dir DIR.");
    return *best;
}

std::vector<const BackupInfo*> resolve_chain(const std::vector<BackupInfo>& backups, const std::string& id)
{
    const BackupInfo* b = by_id(backups, id);
    if (!b)
        throw Error(sqlstate::invalid_parameter_value, "unknown backup ID \"" + id + "\"");
    std::vector<const BackupInfo*> chain{b};
    std::set<std::string> seen{b->id};
    while (!b->parent.empty()) {
        const BackupInfo* p = by_id(backups, b->parent);
        if (!p)
            throw Error("XX001", "backup " + b->id + " needs its parent " + b->parent +
                                     ", which is not in the catalog (deleted or unreadable)");
        if (!seen.insert(p->id).second)
            throw Error("XX001", "backup " + b->id + ": its chain of parents loops back to " + p->id);
        if (p->kind != "physical")
            throw Error("XX001", "backup " + b->id + ": parent " + p->id + " is not a physical backup");
        if (p->system_identifier != b->system_identifier)
            throw Error("XX001", "backup " + b->id + ": parent " + p->id + " is of another system (" +
                                     p->system_identifier + ", not " + b->system_identifier + ")");
        if (p->timeline != b->timeline)
            throw Error("XX001", "backup " + b->id + ": parent " + p->id + " is on timeline " +
                                     std::to_string(p->timeline) + ", not " + std::to_string(b->timeline));
        if (lsn_or_zero(p->start_lsn) == 0 || lsn_or_zero(p->start_lsn) >= lsn_or_zero(b->start_lsn))
            throw Error("XX001", "backup " + b->id + ": parent " + p->id + " does not start before it");
        chain.push_back(p);
        b = p;
    }
    return {chain.rbegin(), chain.rend()};
}

void keep_needed_parents(const std::vector<BackupInfo>& backups, std::vector<RetentionDecision>& decisions)
{
    std::map<std::string, RetentionDecision*> decision_of;
    for (auto& d : decisions)
        decision_of[d.id] = &d;
    std::map<std::string, std::string> needed_by;  // parent -> the newest kept backup needing it
    for (const auto& d : decisions) {
        if (!d.keep)
            continue;
        std::set<std::string> seen{d.id};
        for (const BackupInfo* b = by_id(backups, d.id); b && !b->parent.empty(); b = by_id(backups, b->parent)) {
            if (!seen.insert(b->parent).second)
                break;
            needed_by.emplace(b->parent, d.id);
        }
    }
    for (const auto& [parent, child] : needed_by) {
        auto it = decision_of.find(parent);
        if (it == decision_of.end() || it->second->keep)
            continue;
        it->second->keep = true;
        it->second->reason = "needed by kept backup " + child + " (a parent in its chain; " + it->second->reason + ")";
    }
}

}  // namespace warden
