#include "tar_members.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.hpp"

namespace warden {

namespace {
std::string archive_error(archive* ar)
{
    const char* msg = archive_error_string(ar);
    return msg ? msg : "unknown libarchive error";
}
}  // namespace

TarMember describe_entry(archive_entry* entry)
{
    TarMember m;
    const char* p = archive_entry_pathname(entry);
    m.path = p ? p : "";
    while (m.path.size() > 1 && m.path.back() == '/')
        m.path.pop_back();
    m.size = static_cast<std::uint64_t>(archive_entry_size(entry));
    if (const char* hl = archive_entry_hardlink(entry)) {
        m.type = 'h';
        m.link = hl;
        return m;
    }
    switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
        m.type = 'f';
        break;
    case AE_IFDIR:
        m.type = 'd';
        break;
    case AE_IFLNK:
        m.type = 'l';
        if (const char* s = archive_entry_symlink(entry))
            m.link = s;
        break;
    default:
        m.type = 'o';
    }
    return m;
}

std::string hash_entry_data(archive* ar, const std::string& name,
                            const std::function<void(const void*, std::size_t, std::int64_t)>& sink)
{
    Sha256 h;
    const void* buf;
    size_t len;
    la_int64_t offset;
    la_int64_t expected = 0;
    for (;;) {
        int rc = archive_read_data_block(ar, &buf, &len, &offset);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK)
            throw Error(sqlstate::data_exception,
                        "could not read \"" + name + "\" from the archive: " + archive_error(ar));
        // Sparse holes come back as gaps in the offsets; they hash as zeros.
        static const char zeros[8192] = {};
        while (expected < offset) {
            std::size_t n = static_cast<std::size_t>(std::min<la_int64_t>(offset - expected, sizeof zeros));
            h.update(zeros, n);
            expected += static_cast<la_int64_t>(n);
        }
        h.update(buf, len);
        if (sink)
            sink(buf, len, offset);
        expected = offset + static_cast<la_int64_t>(len);
    }
    return h.hex_digest();
}

StreamingTarHasher::StreamingTarHasher() : queue_(2048)
{
    thread_ = std::thread([this] { run(); });
}

StreamingTarHasher::~StreamingTarHasher()
{
    queue_.close();
    if (thread_.joinable())
        thread_.join();
}

void StreamingTarHasher::push(Chunk chunk) { queue_.push(std::move(chunk)); }

la_ssize_t StreamingTarHasher::read_cb(archive*, void* self, const void** buf)
{
    auto* me = static_cast<StreamingTarHasher*>(self);
    if (!me->queue_.pop(me->current_))
        return 0;
    *buf = me->current_->data();
    return static_cast<la_ssize_t>(me->current_->size());
}

void StreamingTarHasher::run()
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
            if (m.type == 'f')
                m.sha256 = hash_entry_data(ar, m.path);
            members_.push_back(std::move(m));
        }
    } catch (const std::exception& e) {
        error_ = e.what();
    }
    archive_read_free(ar);
    // Drain the rest (the tar's end padding, or everything after an error) so the
    // network thread never blocks on a full queue.
    Chunk rest;
    while (queue_.pop(rest)) {
    }
}

std::vector<TarMember> StreamingTarHasher::finish()
{
    queue_.finish();
    thread_.join();
    if (!error_.empty())
        throw Error(sqlstate::data_exception, error_);
    return std::move(members_);
}

ArchiveFileReader::ArchiveFileReader(const std::string& path) : path_(path), buf_(1 << 20)
{
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
        throw Error("58030", "could not open \"" + path + "\": " + std::strerror(errno));
    ar_ = archive_read_new();
    archive_read_support_filter_all(ar_);
    archive_read_support_format_tar(ar_);
    if (archive_read_open(ar_, this, nullptr, read_cb, nullptr) != ARCHIVE_OK)
        throw Error(sqlstate::data_exception, "could not read \"" + path + "\": " + archive_error(ar_));
}

ArchiveFileReader::~ArchiveFileReader()
{
    if (ar_)
        archive_read_free(ar_);
    if (fd_ >= 0)
        ::close(fd_);
}

la_ssize_t ArchiveFileReader::read_cb(archive* ar, void* self, const void** buf)
{
    auto* me = static_cast<ArchiveFileReader*>(self);
    for (;;) {
        ssize_t n = ::read(me->fd_, me->buf_.data(), me->buf_.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            archive_set_error(ar, errno, "read error");
            return -1;
        }
        me->hash_.update(me->buf_.data(), static_cast<std::size_t>(n));
        *buf = me->buf_.data();
        return n;
    }
}

void ArchiveFileReader::for_each(const std::function<void(archive_entry*)>& fn)
{
    archive_entry* entry;
    for (;;) {
        int rc = archive_read_next_header(ar_, &entry);
        if (rc == ARCHIVE_EOF)
            return;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
            throw Error(sqlstate::data_exception,
                        "\"" + path_ + "\" is damaged or truncated: " + archive_error(ar_));
        fn(entry);
    }
}

std::string ArchiveFileReader::file_sha256()
{
    for (;;) {
        ssize_t n = ::read(fd_, buf_.data(), buf_.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58030", "could not read \"" + path_ + "\": " + std::strerror(errno));
        if (n == 0)
            break;
        hash_.update(buf_.data(), static_cast<std::size_t>(n));
    }
    return hash_.hex_digest();
}

}  // namespace warden
