#include "wal_retention.hpp"

#include <algorithm>
#include <map>
#include <optional>

namespace warden::wal {

namespace {
// The segment a stored file belongs to, for the files pruning may remove: segments,
// timeline-end .partial segments, backup history files and conflict copies, each with
// its .sha256. The receiver's live .partial and history files never qualify.
std::optional<SegmentId> prunable_segment(const std::string& stored, std::uint64_t seg_size)
{
    std::string base = stored;
    const std::string sha = ".sha256";
    if (base.size() > sha.size() && base.compare(base.size() - sha.size(), sha.size(), sha) == 0)
        base.resize(base.size() - sha.size());
    if (auto c = base.find(".conflict-"); c != std::string::npos)
        base.resize(c);
    bool compressed = base.size() > 4 && base.compare(base.size() - 4, 4, ".zst") == 0;
    if (compressed)
        base.resize(base.size() - 4);
    switch (classify(base)) {
    case FileKind::segment:
        if (!compressed)
            return std::nullopt;
        break;
    case FileKind::partial_segment:
        if (!compressed)
            return std::nullopt;  // the receiver's live segment
        break;
    case FileKind::backup_label:
        break;
    case FileKind::history:
    case FileKind::other:
        return std::nullopt;
    }
    return parse_segment_name(base, seg_size);
}
}  // namespace

PrunePlan plan_wal_prune(const std::vector<std::string>& stored, const std::vector<KeptBackup>& kept,
                         std::uint64_t seg_size)
{
    check_segment_size(seg_size, "segment size");
    PrunePlan plan;
    if (kept.empty()) {
        plan.keep_reason = "no physical backup is kept, so all WAL stays";
        return plan;
    }
    const KeptBackup& oldest = *std::min_element(
        kept.begin(), kept.end(), [](const KeptBackup& a, const KeptBackup& b) { return a.start < b.start; });
    std::uint64_t cutoff = segment_of(oldest.start, seg_size);
    std::string cutoff_name = segment_name(oldest.tli, cutoff, seg_size);
    plan.keep_reason = "WAL from " + cutoff_name + " on is needed by backup " + oldest.id +
                       " (starts at " + format_lsn(oldest.start) + ")";

    // Group by timeline, then contiguous segment numbers, so the dry run reads as ranges.
    std::map<SegmentId, std::vector<std::string>> by_segment;
    for (const auto& name : stored)
        if (auto id = prunable_segment(name, seg_size); id && id->segno < cutoff)
            by_segment[*id].push_back(name);
    const std::string reason = "older than " + cutoff_name + ", where the oldest kept backup (" +
                               oldest.id + ") starts";
    for (const auto& [id, files] : by_segment) {
        std::string name = segment_name(id.tli, id.segno, seg_size);
        bool extends = false;
        if (!plan.ranges.empty()) {
            auto last = parse_segment_name(plan.ranges.back().last, seg_size);
            extends = last && last->tli == id.tli && last->segno + 1 >= id.segno;
        }
        if (!extends)
            plan.ranges.push_back({name, name, {}, reason});
        plan.ranges.back().last = name;
        auto& out = plan.ranges.back().files;
        out.insert(out.end(), files.begin(), files.end());
    }
    for (auto& r : plan.ranges)
        std::sort(r.files.begin(), r.files.end());
    return plan;
}

}  // namespace warden::wal
