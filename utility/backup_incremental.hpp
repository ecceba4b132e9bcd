// Incremental and differential physical backups (docs/backup.md): the BASE_BACKUP stream
// is read as it arrives; whole files go into the usual archives, and of each relation's
// main fork only the blocks changed since the parent go into blocks.tar, listed with a
// SHA-256 each in incremental.json (core/block_map.hpp).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backup_catalog.hpp"
#include "backup_manifest.hpp"
#include "block_map.hpp"
#include "compressed_writer.hpp"
#include "tar_members.hpp"

namespace warden {

inline constexpr const char* kBlockMapFile = "incremental.json";
inline constexpr const char* kBlocksArchiveBase = "blocks.tar";

struct IncrementalRequest {
    bool differential = false;  // against the newest full backup instead of the newest backup
    std::string from_id;        // an explicit parent
    // The catalog as the user named it (s3://...), for messages; empty: the folder itself.
    std::string catalog_name;
    // Called with the chosen parent's ID before its backup_manifest is read: a remote
    // repository brings that file into the local stand-in of the catalog.
    std::function<void(const std::string&)> fetch_parent_manifest;
};

// The parent as the stream filter needs it: its start LSN and the size of every file it has.
struct IncrementalParent {
    BackupInfo info;
    Lsn start_lsn = 0;
    std::unordered_map<std::string, std::uint64_t> sizes;
};

// Picks and loads the parent of a new backup of SYSTEM_IDENTIFIER in the catalog DIR,
// checking that its chain is whole. Throws warden::Error with the reason.
IncrementalParent load_incremental_parent(const std::string& dir, const IncrementalRequest& req,
                                          const std::string& system_identifier);

// blocks.tar[.gz|.zst]: one member "FILE/BLOCK" per stored block, shared by every archive
// of the stream (they are filtered one after the other).
class BlockStore {
public:
    BlockStore(const std::string& path, Compression c, int level, int threads);
    ~BlockStore();
    BlockStore(const BlockStore&) = delete;
    BlockStore& operator=(const BlockStore&) = delete;
    // Starts a main fork of SIZE bytes at PATH; returns its index in the block map.
    std::size_t begin_file(const std::string& path, std::uint64_t size);
    void add_block(std::size_t file, std::uint64_t blkno, const unsigned char* data, std::size_t len);
    WrittenFile finish();
    BlockMap& map() { return map_; }
    std::uint64_t blocks() const { return blocks_; }

private:
    static la_ssize_t write_cb(archive*, void* self, const void* buf, size_t len);
    std::unique_ptr<CompressedWriter> writer_;
    archive* aw_ = nullptr;
    std::string error_;
    BlockMap map_;
    std::uint64_t blocks_ = 0;
};

// One archive of the stream (base.tar or a tablespace's OID.tar), filtered on its own
// thread while the network thread pushes chunks: every member is hashed whole (for the
// check against backup_manifest), whole files are copied into OUT_PATH, changed blocks
// of main forks go to BLOCKS.
class IncrementalArchiveFilter {
public:
    IncrementalArchiveFilter(const IncrementalParent& parent, const std::string& tablespace_oid,
                             const std::string& out_path, Compression c, int level, int threads, BlockStore& blocks);
    ~IncrementalArchiveFilter();
    IncrementalArchiveFilter(const IncrementalArchiveFilter&) = delete;
    IncrementalArchiveFilter& operator=(const IncrementalArchiveFilter&) = delete;
    void push(Chunk chunk);
    // Waits for the end of the stream; the members as the server sent them.
    std::vector<TarMember> finish(WrittenFile& written);

private:
    void run();
    void copy_member(archive* in, archive_entry* entry, TarMember& m);
    static la_ssize_t read_cb(archive*, void* self, const void** buf);
    static la_ssize_t write_cb(archive*, void* self, const void* buf, size_t len);

    const IncrementalParent& parent_;
    std::string oid_;
    std::unique_ptr<CompressedWriter> writer_;
    BlockStore& blocks_;
    archive* aw_ = nullptr;
    BoundedQueue<Chunk> queue_;
    Chunk current_;
    std::vector<TarMember> members_;
    std::string error_;
    std::thread thread_;
};

}  // namespace warden
