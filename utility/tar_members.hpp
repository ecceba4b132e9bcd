// Tar members hashed with libarchive: from the live BASE_BACKUP stream (fed by the
// network thread) or from an archive file on disk (any compression libarchive reads).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bounded_queue.hpp"
#include "checksum.hpp"

namespace warden {

class FileOpener;

struct TarMember {
    std::string path;
    char type = 'o';  // 'f' file, 'd' directory, 'l' symlink, 'h' hard link, 'o' other
    std::uint64_t size = 0;
    std::string sha256;  // files only
    std::string link;    // symlink or hard link target
    bool sparse = false;  // holes in the tar: never written by BASE_BACKUP
    std::int64_t mtime = 0;
};

TarMember describe_entry(archive_entry* entry);

using Chunk = std::shared_ptr<const std::string>;

// Reads a tar stream on its own thread while the caller pushes chunks of it.
class StreamingTarHasher {
public:
    StreamingTarHasher();
    ~StreamingTarHasher();
    StreamingTarHasher(const StreamingTarHasher&) = delete;
    StreamingTarHasher& operator=(const StreamingTarHasher&) = delete;

    void push(Chunk chunk);
    // Waits for the end of the stream; throws warden::Error if the tar was unreadable.
    std::vector<TarMember> finish();

private:
    void run();
    static la_ssize_t read_cb(archive*, void* self, const void** buf);

    BoundedQueue<Chunk> queue_;
    Chunk current_;
    std::vector<TarMember> members_;
    std::string error_;
    std::thread thread_;
};

// Opens a stored archive (.tar, .tar.gz or .tar.zst). A thread reads the file, hashes
// the stored bytes and decompresses them while libarchive walks the tar on the caller's
// thread: decompression and extraction use a core each. One pass checks both the file's
// own checksum and its members.
class ArchiveFileReader {
public:
    // The file must be a regular file (not a link to one) of exactly expected_size
    // bytes, checked before anything is read.
    ArchiveFileReader(const std::string& path, std::uint64_t expected_size);
    ~ArchiveFileReader();
    ArchiveFileReader(const ArchiveFileReader&) = delete;
    ArchiveFileReader& operator=(const ArchiveFileReader&) = delete;

    archive* get() const { return ar_; }
    // Calls fn for every entry; fn reads the entry's data from get() (or leaves it).
    void for_each(const std::function<void(archive_entry*)>& fn);
    // Reads what libarchive left unread and returns the SHA-256 of the whole file.
    std::string file_sha256();
    const std::string& path() const { return path_; }

private:
    static la_ssize_t read_cb(archive*, void* self, const void** buf);
    void produce();
    void decompress_gzip(int fd);
    void decompress_zstd(int fd);
    void copy_plain(int fd);
    bool read_input(int fd, std::vector<char>& buf, std::size_t& len);
    bool read_raw(int fd, std::vector<char>& buf, std::size_t& len);
    std::size_t read_exact(int fd, char* out, std::size_t len);
    void hash_rest(int fd);
    void emit(const char* data, std::size_t len);
    void finish_producer();

    std::string path_;
    archive* ar_ = nullptr;
    BoundedQueue<Chunk> queue_;
    Chunk current_;
    Sha256 hash_;
    std::string hash_hex_;
    // A sealed archive (WARDNC01 header) is opened segment by segment with the backup
    // secret (backup_key.hpp) before it is decompressed.
    std::unique_ptr<FileOpener> opener_;
    bool header_checked_ = false;
    std::string error_;
    std::thread producer_;
    // Set once libarchive is done: what follows the tar's end is hashed, not
    // decompressed, so trailing data cannot make a small file expand without bound.
    std::atomic<bool> stop_decompressing_{false};
};

// Hashes the current entry's data (and passes each block to sink, if given). The data
// must be exactly m.size bytes without holes: anything else is an error, raised before
// more than m.size bytes are read.
std::string hash_entry_data(archive* ar, const TarMember& m,
                            const std::function<void(const void*, std::size_t, std::int64_t)>& sink = {});

}  // namespace warden
