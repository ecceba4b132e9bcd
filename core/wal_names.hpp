// WAL file names, LSN and timeline arithmetic, timeline history files: the rules
// PostgreSQL uses to name and find WAL, kept pure so the archive, the receiver and
// `wal verify` agree with the server and can be unit-tested without one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warden::wal {

using Lsn = std::uint64_t;
using TimeLine = std::uint32_t;

inline constexpr std::uint64_t kDefaultSegmentSize = 16 * 1024 * 1024;
// PostgreSQL's range for wal_segment_size (IsValidWalSegSize): a power of two from 1 MB
// to 1 GB.
inline constexpr std::uint64_t kMinSegmentSize = 1024 * 1024;
inline constexpr std::uint64_t kMaxSegmentSize = 1024 * 1024 * 1024;

bool valid_segment_size(std::uint64_t seg_size);
// Throws warden::Error (22023) naming `where` unless seg_size is valid: every size read
// from a file goes through here before anything divides by it.
void check_segment_size(std::uint64_t seg_size, const std::string& where);

// "16/B374D848" <-> 0x16B374D848. Throws warden::Error (22023) on a malformed LSN.
Lsn parse_lsn(std::string_view text);
std::string format_lsn(Lsn lsn);

// Segment numbers count segments from LSN 0. seg_size must be valid (check_segment_size).
inline std::uint64_t segment_of(Lsn lsn, std::uint64_t seg_size) { return lsn / seg_size; }
inline Lsn segment_start(std::uint64_t segno, std::uint64_t seg_size) { return segno * seg_size; }

// "000000010000000A0000003F": timeline, then the segment number split in two 32-bit
// halves the way the server splits it (segments per 4 GiB "xlogid"). These throw
// warden::Error (22023) on an invalid segment size instead of dividing by it.
std::string segment_name(TimeLine tli, std::uint64_t segno, std::uint64_t seg_size);

struct SegmentId {
    TimeLine tli = 0;
    std::uint64_t segno = 0;
    bool operator==(const SegmentId& o) const { return tli == o.tli && segno == o.segno; }
    bool operator<(const SegmentId& o) const
    {
        return tli != o.tli ? tli < o.tli : segno < o.segno;
    }
};

// What kind of file a name in pg_wal or in the archive is.
enum class FileKind {
    segment,         // 000000010000000000000003
    partial_segment, // 000000010000000000000003.partial (last, unfinished segment)
    history,         // 00000002.history
    backup_label,    // 000000010000000000000003.00000028.backup
    other,
};
FileKind classify(std::string_view name);

// Where the backup that a backup history file describes started, from the file's name
// alone ("000000010000000000000002.00000028.backup": the start's timeline and segment,
// then its offset in the segment, as the server's BackupHistoryFileName writes it), so
// that no content (sealed in an encrypted archive) needs reading. nullopt unless the name
// is a backup history file's with an offset inside the segment.
std::optional<std::pair<TimeLine, Lsn>> backup_history_start(std::string_view name, std::uint64_t seg_size);

// Parses a segment name (or the segment part of a .partial/.backup name).
std::optional<SegmentId> parse_segment_name(std::string_view name, std::uint64_t seg_size);

// "00000002.history" for timeline 2; parse_history_name gives the timeline back.
std::string history_name(TimeLine tli);
std::optional<TimeLine> parse_history_name(std::string_view name);

// One line of a timeline history file: timeline `tli` ended at `end` (where its child
// began), for `reason`.
struct HistoryEntry {
    TimeLine tli = 0;
    Lsn end = 0;
    std::string reason;
};

// Parses the text of "<tli>.history" (comments and blank lines ignored). Throws
// warden::Error (22000) on a malformed line or timelines not strictly increasing.
std::vector<HistoryEntry> parse_history(std::string_view text);

// The ancestry of a timeline as PostgreSQL sees it: each timeline of the chain with the
// LSN where it begins (0 for the first) and ends (UINT64_MAX for `newest` itself).
struct TimelineSpan {
    TimeLine tli = 0;
    Lsn begin = 0;
    Lsn end = UINT64_MAX;
};
std::vector<TimelineSpan> timeline_chain(TimeLine newest, const std::vector<HistoryEntry>& history);

// The timeline whose file recovery reads for segment `segno` when it follows `chain`: the
// newest timeline that had begun by that segment (XLogFileReadAnyTLI's rule, which
// also makes the segment holding a switch point come from the new timeline).
TimeLine timeline_for_segment(const std::vector<TimelineSpan>& chain, std::uint64_t segno,
                              std::uint64_t seg_size);

// The first segment recovery would need but `present` lacks, walking from the segment of
// `from` up to and including `to_segno` along `chain`; nullopt when none is missing.
// `present` must be sorted.
std::optional<SegmentId> first_missing_segment(const std::vector<TimelineSpan>& chain, Lsn from,
                                               std::uint64_t to_segno,
                                               const std::vector<SegmentId>& present,
                                               std::uint64_t seg_size);

}  // namespace warden::wal
