#include "retention.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "error.hpp"
#include "lsn.hpp"

namespace warden {

namespace {
struct Ranked {
    const BackupInfo* info;
    Lsn stop_lsn;
    std::time_t finished;
};

std::string series_of(const BackupInfo& b)
{
    return b.kind + "|" + b.system_identifier + "|" + (b.kind == "logical" ? b.database : "");
}

std::string series_name(const BackupInfo& b)
{
    return b.kind == "logical" ? "logical backups of database " + b.database
                               : "physical backups";
}
}  // namespace

std::vector<RetentionDecision> decide_retention(const std::vector<BackupInfo>& backups,
                                                const RetentionPolicy& policy)
{
    if (policy.keep_last < 1)
        throw Error(sqlstate::invalid_parameter_value, "--keep-last must be at least 1",
                    {}, "Retention always keeps the newest backup.");
    if (policy.keep_days && *policy.keep_days < 0)
        throw Error(sqlstate::invalid_parameter_value, "--keep-days must not be negative");

    std::map<std::string, std::vector<Ranked>> series;
    const BackupInfo* last_finished = nullptr;
    std::time_t last_time = 0;
    for (const auto& b : backups) {
        auto finished = parse_iso8601_utc(b.finished_at);
        if (!finished)
            throw Error(sqlstate::data_exception,
                        "backup " + b.id + " has no readable finish time; nothing pruned");
        Lsn lsn;
        try {
            lsn = parse_lsn(b.stop_lsn);
        } catch (const Error&) {
            throw Error(sqlstate::data_exception,
                        "backup " + b.id + " has no readable stop LSN; nothing pruned");
        }
        series[series_of(b)].push_back({&b, lsn, *finished});
        if (!last_finished || *finished > last_time) {
            last_finished = &b;
            last_time = *finished;
        }
    }
    std::string target = policy.system_identifier;
    if (target.empty() && last_finished)
        target = last_finished->system_identifier;

    std::vector<RetentionDecision> out;
    for (auto& [key, list] : series) {
        std::sort(list.begin(), list.end(), [](const Ranked& a, const Ranked& b) {
            return std::make_tuple(a.info->timeline, a.stop_lsn, a.finished, a.info->id) >
                   std::make_tuple(b.info->timeline, b.stop_lsn, b.finished, b.info->id);
        });
        const BackupInfo* newest_verified = nullptr;
        for (const auto& r : list)
            if (r.info->verify_ok.value_or(false)) {
                newest_verified = r.info;
                break;
            }
        int rank = 0;  // among backups whose last verification did not fail
        for (const auto& r : list) {
            const BackupInfo& b = *r.info;
            RetentionDecision d{b.id, true, ""};
            bool counted = !b.verify_failed();
            if (counted)
                ++rank;
            double age_days = static_cast<double>(policy.now - r.finished) / 86400.0;
            if (b.system_identifier != target) {
                d.reason = "system identifier " + b.system_identifier +
                           " is not the one being pruned (" + target + ")";
            } else if (&b == newest_verified) {
                d.reason = "newest verified of the " + series_name(b);
            } else if (counted && rank <= policy.keep_last) {
                d.reason = "among the newest " + std::to_string(policy.keep_last) + " " +
                           series_name(b) + " (number " + std::to_string(rank) + ")";
            } else if (policy.keep_days && age_days < *policy.keep_days) {
                d.reason = "younger than " + std::to_string(*policy.keep_days) + " days";
            } else {
                d.keep = false;
                if (!counted)
                    d.reason = "its last verification failed";
                else
                    d.reason = "older than the newest " + std::to_string(policy.keep_last) +
                               " " + series_name(b);
                if (policy.keep_days)
                    d.reason += " and older than " + std::to_string(*policy.keep_days) + " days";
            }
            out.push_back(std::move(d));
        }
    }
    return out;
}

}  // namespace warden
