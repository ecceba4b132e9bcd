// The WAL archive: BACKUPS/wal/, shared by `wal push`, `wal receive`, `wal fetch` and
// `wal verify`.
//
//   <segment>.zst           a finished segment, zstd-compressed (level 1)
//   <segment>.zst.sha256    SHA-256 of the uncompressed segment ("<hex>  <segment>")
//   <segment>.partial       the receiver's current segment, uncompressed, growing
//   <segment>.ready         a finished segment, fsynced, waiting for the compressor
//   <segment>.partial.zst   a timeline's last, unfinished segment (+ .sha256)
//   <tli>.history, <segment>.<offset>.backup   kept as they are (+ .sha256)
//   archive.json            system identifier and segment size, written once
//   encryption.json         only in an encrypted archive: salt and key check, created
//                           once (O_EXCL) by the first `wal push --encrypt`
//   receiver.lock           held (flock) by the one running receiver
//
// Every file is written under a temporary name, fsynced, renamed, and the directory
// fsynced. The checksum is renamed into place before the data, so a data file always has
// its checksum beside it and a crash in between leaves nothing that counts as archived.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "wal_names.hpp"

namespace warden::walarchive {

namespace fs = std::filesystem;

// How the command was asked to treat encryption (docs/backup.md, "Encryption at rest"),
// set once by `wal push|fetch|verify|receive|recovery-settings` after loading the secret
// (backup_key.hpp). An archive with encryption.json needs that secret for any content;
// `encrypt` creates encryption.json in an archive that holds no file yet; a key given by
// --key-file to an archive without encryption.json is refused (never a silent downgrade).
void request_encryption(bool encrypt, bool key_file_given);
bool encryption_requested();
inline constexpr const char* kEncryptionFile = "encryption.json";
// Whether NAME, as stored in an archive (with or without .zst), is a segment, a history
// file or a backup history file: what an archive holds in the clear or sealed.
bool is_stored_wal_file(std::string name);

// The folder given by --dir, else $WARDEN_BACKUP_DIR; throws a usage-style error if neither.
fs::path backup_dir_from(const std::string& option);

// Thrown when a requested file is not in the archive (fetch exits 1 quietly enough for
// recovery to treat it as the end of the archive).
struct NotFound : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Thrown by Archive(dir, false) when BACKUPS/wal does not exist.
struct NotArchive : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class PushOutcome { stored, already_present };

struct VerifyProblem {
    std::string file;    // the first bad or missing file
    std::string reason;
};

struct VerifyReport {
    std::size_t segments_checked = 0;
    std::size_t other_files_checked = 0;
    wal::TimeLine newest_timeline = 0;
    std::string oldest_segment, newest_segment;
    std::vector<VerifyProblem> problems;  // in the order found; the first is named
};

// What `wal status` shows: the newest durable WAL and whether a receiver runs.
struct ArchiveStatus {
    std::string newest_segment;        // newest finished segment on any timeline
    std::int64_t newest_age_seconds = -1;  // since it was archived
    std::string live_partial;          // the receiver's current segment, if any
    std::int64_t live_partial_age_seconds = -1;  // since its last write
    bool receiver_running = false;
    std::string receiver_pid;
    std::size_t segments = 0;
    std::uint64_t stored_bytes = 0;
    std::size_t conflicts = 0;         // copies set aside by a conflicting push
};

class Archive {
public:
    // Opens BACKUPS/wal, creating it (and BACKUPS) if needed; with create=false a
    // missing folder throws NotArchive.
    explicit Archive(const fs::path& backup_dir, bool create = true);

    const fs::path& dir() const { return dir_; }

    // archive_command: stores a file from pg_wal under its own name. Same content already
    // present: already_present. Different content: throws after saving the new copy aside.
    PushOutcome push(const fs::path& source);

    // Stores bytes under `name` (a segment, .partial, .history or .backup name) with the
    // same rules as push; used by the receiver.
    PushOutcome store(const std::string& name, const std::string& bytes);

    // restore_command: writes `name` to `dest`, checked against its SHA-256. A segment
    // that exists only as the receiver's live .partial is served from it, zero-padded to
    // the segment size (what recovery with --latest needs). Throws NotFound only when no
    // form of the file exists (ENOENT); a file that exists but cannot be served (denied,
    // damaged, too large, bad archive.json, destination not writable) throws anything else.
    void fetch(const std::string& name, const fs::path& dest);

    // Checks every checksum and that no segment is missing between each start point and
    // the newest segment along the newest timeline's history. `starts` are the start
    // LSNs of kept backups (with their timeline); empty means from the oldest segment.
    VerifyReport verify(const std::vector<std::pair<wal::TimeLine, wal::Lsn>>& starts);

    // Checks the key against encryption.json (or creates it, see request_encryption) before
    // any content is read or written; every method that touches content calls it.
    void unlock();
    bool encrypted() const;

    // Segment size and system identifier recorded by the first receiver or push; the
    // default size when archive.json does not exist yet. A damaged archive.json throws.
    std::uint64_t segment_size() const;
    std::optional<std::string> system_identifier() const;
    // Records them, or throws if the archive already belongs to another system.
    void record_identity(const std::string& system_identifier, std::uint64_t segment_size);

    // Segments present (finished .zst, .ready, plus the live .partial), sorted.
    std::vector<wal::SegmentId> segments() const;
    // The live .partial of the receiver, if any: its segment and size.
    std::optional<std::pair<wal::SegmentId, std::uint64_t>> live_partial() const;
    bool has_history(wal::TimeLine tli) const;
    ArchiveStatus status() const;
    std::string read_history(wal::TimeLine tli);

private:
    struct Identity {
        std::string system_identifier;
        std::uint64_t segment_size = 0;
    };
    // archive.json, read once and validated (a segment size PostgreSQL could have, not 0
    // or 2^40); nullopt when there is none yet. Anything invalid throws a one-line error.
    const std::optional<Identity>& identity() const;

    // SHA-256 of the content, or in an encrypted archive HMAC-SHA256 of the name and the
    // content under the archive's checksum key.
    std::string digest(const std::string& name, const std::string& bytes) const;
    // Stored form: compressed (for .zst names), then sealed in an encrypted archive.
    std::string encode(const std::string& stored, const std::string& bytes) const;
    std::string content(const fs::path& stored, std::uint64_t seg_size);
    std::string content_fd(int fd, const fs::path& stored, std::uint64_t seg_size);
    bool holds_stored_files() const;

    fs::path dir_;
    // The receiver stores from two threads; the first store of each unlocks.
    std::mutex unlock_mu_;
    bool unlocked_ = false;
    std::optional<std::string> secret_;
    std::string mac_key_;
    mutable bool identity_loaded_ = false;
    mutable std::optional<Identity> identity_;
};

// File helpers the receiver also uses.
void fsync_path(const fs::path& p, bool directory);
// Writes `bytes` to dir/name through dir/name.tmp.<pid>: write, fsync, rename, fsync dir.
void write_file_durably(const fs::path& dir, const std::string& name, const std::string& bytes);
std::string read_file(const fs::path& p);
// Level 1: WAL compresses about as well as at 3, for half the CPU the database shares.
std::string zstd_compress(const std::string& bytes, int level = 1);
// Never allocates what the frame header claims: the output streams into `limit` bytes
// (the segment size) and content that would exceed it is an error.
std::string zstd_decompress(const std::string& compressed, std::uint64_t limit, const std::string& what);

}  // namespace warden::walarchive
