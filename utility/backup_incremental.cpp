#include "backup_incremental.hpp"

#include <cstring>

#include "backup_chain.hpp"
#include "backup_check.hpp"
#include "backup_paths.hpp"
#include "backup_restore.hpp"
#include "catalog_files.hpp"
#include "error.hpp"

namespace warden {

namespace {
std::string archive_error(archive* ar)
{
    const char* msg = archive_error_string(ar);
    return msg ? msg : "unknown libarchive error";
}

// A tar written through a callback into a CompressedWriter: no blocking, so the stored
// archive ends right after the end-of-archive marker.
archive* open_tar_writer(void* self, la_ssize_t (*cb)(archive*, void*, const void*, size_t))
{
    archive* aw = archive_write_new();
    if (!aw)
        throw Error("53200", "out of memory (libarchive)");
    if (archive_write_set_format_pax_restricted(aw) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(aw, 0) != ARCHIVE_OK ||
        archive_write_open(aw, self, nullptr, cb, nullptr) != ARCHIVE_OK) {
        std::string why = archive_error(aw);
        archive_write_free(aw);
        throw Error("58030", "could not start a tar archive: " + why);
    }
    return aw;
}
}  // namespace

IncrementalParent load_incremental_parent(const std::string& dir, const IncrementalRequest& req,
                                          const std::string& system_identifier)
{
    CatalogListing listing = load_catalog(dir);
    const std::string& where = req.catalog_name.empty() ? dir : req.catalog_name;
    const BackupInfo* parent = nullptr;
    if (!req.from_id.empty()) {
        for (const auto& b : listing.backups)
            if (b.id == req.from_id)
                parent = &b;
        if (!parent)
            throw Error(sqlstate::invalid_parameter_value, "--from " + req.from_id + ": no such backup in " + where, {},
                        "warden backup list --dir " + where + " shows the backups.");
        if (parent->kind != "physical")
            throw Error(sqlstate::invalid_parameter_value, "--from " + req.from_id + ": not a physical backup");
        if (req.differential && !parent->parent.empty())
            throw Error(sqlstate::invalid_parameter_value,
                        "--from " + req.from_id + ": a differential backup's parent must be a full backup");
        if (parent->verify_failed())
            throw Error(sqlstate::invalid_parameter_value, "--from " + req.from_id + ": its last verification failed");
    } else {
        parent = &choose_parent(listing.backups,
                                req.differential ? ParentKind::latest_full : ParentKind::latest, system_identifier);
    }
    if (parent->system_identifier != system_identifier)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "backup " + parent->id + " is of another system (" + parent->system_identifier +
                        ", the server is " + system_identifier + ")");
    // Every link must still be there: a chain with a hole cannot be restored.
    resolve_chain(listing.backups, parent->id);

    IncrementalParent p;
    p.info = *parent;
    p.start_lsn = parse_lsn(parent->start_lsn);
    if (req.fetch_parent_manifest)
        req.fetch_parent_manifest(parent->id);
    BackupManifest manifest = read_backup_manifest(dir + "/" + parent->id, *parent);
    for (const auto& f : manifest.files())
        p.sizes[f.path] = f.size;
    return p;
}

BlockStore::BlockStore(const std::string& path, Compression c, int level, int threads)
    : writer_(std::make_unique<CompressedWriter>(path, c, level, threads))
{
    aw_ = open_tar_writer(this, write_cb);
}

BlockStore::~BlockStore()
{
    if (aw_)
        archive_write_free(aw_);
}

la_ssize_t BlockStore::write_cb(archive*, void* self, const void* buf, size_t len)
{
    auto* me = static_cast<BlockStore*>(self);
    try {
        me->writer_->write(static_cast<const char*>(buf), len);
    } catch (const std::exception& e) {
        me->error_ = e.what();
        return -1;
    }
    return static_cast<la_ssize_t>(len);
}

std::size_t BlockStore::begin_file(const std::string& path, std::uint64_t size)
{
    BlockFile f;
    f.path = path;
    f.size = size;
    map_.files.push_back(std::move(f));
    return map_.files.size() - 1;
}

void BlockStore::add_block(std::size_t file, std::uint64_t blkno, const unsigned char* data, std::size_t len)
{
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, block_member_name(file, blkno).c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(len));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    int rc = archive_write_header(aw_, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK || archive_write_data(aw_, data, len) != static_cast<la_ssize_t>(len))
        throw Error("58030", "could not write blocks.tar: " + (error_.empty() ? archive_error(aw_) : error_));
    map_.files[file].blocks.push_back(blkno);
    map_.files[file].sha256.push_back(sha256_hex(std::string_view(reinterpret_cast<const char*>(data), len)));
    ++blocks_;
}

WrittenFile BlockStore::finish()
{
    if (archive_write_close(aw_) != ARCHIVE_OK)
        throw Error("58030", "could not finish blocks.tar: " + (error_.empty() ? archive_error(aw_) : error_));
    return writer_->finish();
}

IncrementalArchiveFilter::IncrementalArchiveFilter(const IncrementalParent& parent, const std::string& tablespace_oid,
                                                   const std::string& out_path, Compression c, int level,
                                                   int threads, BlockStore& blocks)
    : parent_(parent),
      oid_(tablespace_oid),
      writer_(std::make_unique<CompressedWriter>(out_path, c, level, threads)),
      blocks_(blocks),
      queue_(2048)
{
    aw_ = open_tar_writer(this, write_cb);
    thread_ = std::thread([this] { run(); });
}

IncrementalArchiveFilter::~IncrementalArchiveFilter()
{
    queue_.close();
    if (thread_.joinable())
        thread_.join();
    if (aw_)
        archive_write_free(aw_);
}

void IncrementalArchiveFilter::push(Chunk chunk) { queue_.push(std::move(chunk)); }

la_ssize_t IncrementalArchiveFilter::read_cb(archive*, void* self, const void** buf)
{
    auto* me = static_cast<IncrementalArchiveFilter*>(self);
    if (!me->queue_.pop(me->current_))
        return 0;
    *buf = me->current_->data();
    return static_cast<la_ssize_t>(me->current_->size());
}

la_ssize_t IncrementalArchiveFilter::write_cb(archive*, void* self, const void* buf, size_t len)
{
    auto* me = static_cast<IncrementalArchiveFilter*>(self);
    try {
        me->writer_->write(static_cast<const char*>(buf), len);
    } catch (const std::exception& e) {
        me->error_ = e.what();
        return -1;
    }
    return static_cast<la_ssize_t>(len);
}

void IncrementalArchiveFilter::copy_member(archive* in, archive_entry* entry, TarMember& m)
{
    std::string path = BackupContentCheck::data_path(oid_, m.path);
    auto parent_size = parent_.sizes.find(path);
    bool blockwise = m.type == 'f' && !m.sparse && copy_mode_for(path) == FileCopy::blocks &&
                     parent_size != parent_.sizes.end();
    if (!blockwise) {
        if (archive_write_header(aw_, entry) != ARCHIVE_OK)
            throw Error("58030", "could not write " + printable(m.path) + ": " +
                                     (error_.empty() ? archive_error(aw_) : error_));
        if (m.type == 'f')
            m.sha256 = hash_entry_data(in, m, [&](const void* buf, std::size_t len, std::int64_t) {
                if (archive_write_data(aw_, buf, len) != static_cast<la_ssize_t>(len))
                    throw Error("58030", "could not write " + printable(m.path) + ": " +
                                             (error_.empty() ? archive_error(aw_) : error_));
            });
        return;
    }
    // A main fork the parent has: only the blocks that changed since the parent started.
    std::size_t file = blocks_.begin_file(path, m.size);
    std::uint64_t parent_blocks = block_count(parent_size->second);
    unsigned char block[kBlockSize];
    std::size_t filled = 0;
    std::uint64_t blkno = 0;
    auto flush = [&] {
        if (block_changed(block, filled, blkno, parent_blocks, parent_.start_lsn))
            blocks_.add_block(file, blkno, block, filled);
        ++blkno;
        filled = 0;
    };
    m.sha256 = hash_entry_data(in, m, [&](const void* buf, std::size_t len, std::int64_t) {
        const auto* p = static_cast<const unsigned char*>(buf);
        while (len > 0) {
            std::size_t n = std::min(len, kBlockSize - filled);
            std::memcpy(block + filled, p, n);
            filled += n;
            p += n;
            len -= n;
            if (filled == kBlockSize)
                flush();
        }
    });
    if (filled > 0)
        flush();
}

void IncrementalArchiveFilter::run()
{
    archive* ar = archive_read_new();
    archive_read_support_format_tar(ar);
    try {
        if (archive_read_open(ar, this, nullptr, read_cb, nullptr) != ARCHIVE_OK)
            throw Error(sqlstate::data_exception, "could not read the tar stream: " + archive_error(ar));
        archive_entry* entry;
        for (;;) {
            int rc = archive_read_next_header(ar, &entry);
            if (rc == ARCHIVE_EOF)
                break;
            if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
                throw Error(sqlstate::data_exception, "unreadable tar stream: " + archive_error(ar));
            TarMember m = describe_entry(entry);
            copy_member(ar, entry, m);
            members_.push_back(std::move(m));
        }
    } catch (const std::exception& e) {
        error_ = e.what();
    }
    archive_read_free(ar);
    Chunk rest;
    while (queue_.pop(rest)) {
    }
}

std::vector<TarMember> IncrementalArchiveFilter::finish(WrittenFile& written)
{
    queue_.finish();
    thread_.join();
    if (!error_.empty())
        throw Error(sqlstate::data_exception, error_);
    if (archive_write_close(aw_) != ARCHIVE_OK)
        throw Error("58030", "could not finish the archive: " + (error_.empty() ? archive_error(aw_) : error_));
    written = writer_->finish();
    return std::move(members_);
}

}  // namespace warden
