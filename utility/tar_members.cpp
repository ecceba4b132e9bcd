#include "tar_members.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "backup_key.hpp"
#include "backup_paths.hpp"
#include "encryption.hpp"
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
    // PostgreSQL 15 names one member "./pg_wal/archive_status": one leading "./" is
    // the same place; anything else non-canonical is refused later.
    if (m.path.rfind("./", 0) == 0)
        m.path.erase(0, 2);
    m.size = static_cast<std::uint64_t>(archive_entry_size(entry));
    m.sparse = archive_entry_sparse_count(entry) > 0;
    m.mtime = static_cast<std::int64_t>(archive_entry_mtime(entry));
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

std::string hash_entry_data(archive* ar, const TarMember& m,
                            const std::function<void(const void*, std::size_t, std::int64_t)>& sink)
{
    Sha256 h;
    const void* buf;
    size_t len;
    la_int64_t offset;
    std::uint64_t expected = 0;
    for (;;) {
        int rc = archive_read_data_block(ar, &buf, &len, &offset);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK)
            throw Error(sqlstate::data_exception,
                        "could not read \"" + printable(m.path) + "\" from the archive: " + archive_error(ar));
        // A hole would hash as zeros that are nowhere in the file: refused, not filled.
        if (offset < 0 || static_cast<std::uint64_t>(offset) != expected)
            throw Error("XX001", printable(m.path) + ": the archive holds it with holes (a sparse member); refusing");
        if (len > m.size - expected)
            throw Error("XX001", printable(m.path) + ": more data in the archive than its size " + std::to_string(m.size));
        h.update(buf, len);
        if (sink)
            sink(buf, len, offset);
        expected += len;
    }
    if (expected != m.size)
        throw Error("XX001", printable(m.path) + ": " + std::to_string(expected) + " bytes in the archive, " +
                                 std::to_string(m.size) + " announced");
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
                m.sha256 = hash_entry_data(ar, m);
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

ArchiveFileReader::ArchiveFileReader(const std::string& path, std::uint64_t expected_size)
    : path_(path), queue_(64)
{
    // O_NONBLOCK: a FIFO planted in the backup folder must not hang the open.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        throw Error("58030", "could not open \"" + path + "\": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("XX001", "\"" + path + "\" is not a regular file");
    }
    if (static_cast<std::uint64_t>(st.st_size) != expected_size) {
        ::close(fd);
        throw Error("XX001", "\"" + path + "\": size " + std::to_string(st.st_size) + " differs from the recorded " +
                                 std::to_string(expected_size) + " (truncated or damaged)");
    }
    producer_ = std::thread([this, fd] {
        try {
            auto ends_with = [&](const char* suffix) {
                std::size_t n = std::strlen(suffix);
                return path_.size() >= n && path_.compare(path_.size() - n, n, suffix) == 0;
            };
            if (ends_with(".gz"))
                decompress_gzip(fd);
            else if (ends_with(".zst"))
                decompress_zstd(fd);
            else
                copy_plain(fd);
        } catch (const std::exception& e) {
            error_ = e.what();
        }
        ::close(fd);
        hash_hex_ = hash_.hex_digest();
        queue_.finish();
    });
    ar_ = archive_read_new();
    archive_read_support_format_tar(ar_);
    if (archive_read_open(ar_, this, nullptr, read_cb, nullptr) != ARCHIVE_OK) {
        std::string why = archive_error(ar_);
        finish_producer();
        archive_read_free(ar_);
        if (!error_.empty())
            throw Error("XX001", error_);
        throw Error(sqlstate::data_exception, "could not read \"" + path + "\": " + why);
    }
}

ArchiveFileReader::~ArchiveFileReader()
{
    queue_.close();
    if (producer_.joinable())
        producer_.join();
    if (ar_)
        archive_read_free(ar_);
}

std::size_t ArchiveFileReader::read_exact(int fd, char* out, std::size_t len)
{
    std::size_t done = 0;
    while (done < len) {
        ssize_t n = ::read(fd, out + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58030", "could not read \"" + path_ + "\": " + std::strerror(errno));
        if (n == 0)
            break;
        hash_.update(out + done, static_cast<std::size_t>(n));
        done += static_cast<std::size_t>(n);
    }
    return done;
}

// The file's bytes for the decompressor: as stored, or, for a sealed archive, each
// segment opened (authenticated) in turn.
bool ArchiveFileReader::read_input(int fd, std::vector<char>& buf, std::size_t& len)
{
    if (!header_checked_) {
        header_checked_ = true;
        std::string head(kEncryptedHeaderSize, '\0');
        std::size_t n = read_exact(fd, head.data(), head.size());
        if (!looks_encrypted(std::string_view(head.data(), n))) {
            if (buf.size() < n)
                buf.resize(n);
            std::memcpy(buf.data(), head.data(), n);
            len = n;
            return n > 0;
        }
        if (!backup_secret())
            throw Error("XX001", "\"" + path_ + "\" is encrypted and no key was given");
        opener_ = std::make_unique<FileOpener>(*backup_secret(), std::string_view(head.data(), n));
    }
    if (!opener_)
        return read_raw(fd, buf, len);
    try {
        std::string out;
        if (!opener_->next([&](char* p, std::size_t n) { return read_exact(fd, p, n); }, out))
            return false;
        if (buf.size() < out.size())
            buf.resize(out.size());
        std::memcpy(buf.data(), out.data(), out.size());
        len = out.size();
        return true;
    } catch (const Error& e) {
        throw Error("XX001", "\"" + path_ + "\": " + e.what());
    }
}

bool ArchiveFileReader::read_raw(int fd, std::vector<char>& buf, std::size_t& len)
{
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58030", "could not read \"" + path_ + "\": " + std::strerror(errno));
        hash_.update(buf.data(), static_cast<std::size_t>(n));
        len = static_cast<std::size_t>(n);
        return n > 0;
    }
}

void ArchiveFileReader::hash_rest(int fd)
{
    std::vector<char> buf(1 << 20);
    std::size_t len;
    while (read_input(fd, buf, len)) {
    }
}

void ArchiveFileReader::emit(const char* data, std::size_t len)
{
    if (len == 0)
        return;
    if (!queue_.push(std::make_shared<const std::string>(data, len)))
        throw Error(sqlstate::internal_error, "reader stopped");
}

void ArchiveFileReader::copy_plain(int fd)
{
    std::vector<char> in(1 << 20);
    std::size_t len;
    while (!stop_decompressing_ && read_input(fd, in, len))
        emit(in.data(), len);
    hash_rest(fd);
}

void ArchiveFileReader::decompress_gzip(int fd)
{
    std::vector<char> in(1 << 20), out(1 << 20);
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        throw Error(sqlstate::internal_error, "could not initialise zlib");
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
    bool in_member = false;
    std::size_t len;
    while (read_input(fd, in, len)) {
        if (stop_decompressing_)
            return hash_rest(fd);
        zs.next_in = reinterpret_cast<Bytef*>(in.data());
        zs.avail_in = static_cast<uInt>(len);
        while (zs.avail_in > 0 && !stop_decompressing_) {
            // The file is a series of gzip members, one per compressed block.
            if (!in_member) {
                inflateReset(&zs);
                in_member = true;
            }
            zs.next_out = reinterpret_cast<Bytef*>(out.data());
            zs.avail_out = static_cast<uInt>(out.size());
            int rc = inflate(&zs, Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                throw Error("XX001", "\"" + path_ + "\" is damaged: " + (zs.msg ? zs.msg : "bad gzip data"));
            emit(out.data(), out.size() - zs.avail_out);
            if (rc == Z_STREAM_END)
                in_member = false;
        }
    }
    // Drain what inflate still holds for the last member.
    while (in_member && !stop_decompressing_) {
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = static_cast<uInt>(out.size());
        int rc = inflate(&zs, Z_FINISH);
        emit(out.data(), out.size() - zs.avail_out);
        if (rc == Z_STREAM_END)
            in_member = false;
        else if (zs.avail_out != 0)
            throw Error("XX001", "\"" + path_ + "\" is truncated (the gzip stream ends early)");
    }
}

void ArchiveFileReader::decompress_zstd(int fd)
{
    std::vector<char> in(1 << 20), out(ZSTD_DStreamOutSize());
    std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    std::size_t pending = 0;
    std::size_t len;
    while (read_input(fd, in, len)) {
        if (stop_decompressing_)
            return hash_rest(fd);
        ZSTD_inBuffer input{in.data(), len, 0};
        while (input.pos < input.size && !stop_decompressing_) {
            ZSTD_outBuffer output{out.data(), out.size(), 0};
            pending = ZSTD_decompressStream(dctx.get(), &output, &input);
            if (ZSTD_isError(pending))
                throw Error("XX001", "\"" + path_ + "\" is damaged: " + ZSTD_getErrorName(pending));
            emit(out.data(), output.pos);
        }
    }
    for (;;) {
        ZSTD_inBuffer input{nullptr, 0, 0};
        ZSTD_outBuffer output{out.data(), out.size(), 0};
        if (pending == 0 || stop_decompressing_)
            break;
        pending = ZSTD_decompressStream(dctx.get(), &output, &input);
        if (ZSTD_isError(pending))
            throw Error("XX001", "\"" + path_ + "\" is damaged: " + ZSTD_getErrorName(pending));
        emit(out.data(), output.pos);
        if (output.pos == 0 && pending != 0)
            throw Error("XX001", "\"" + path_ + "\" is truncated (the zstd stream ends early)");
    }
}

la_ssize_t ArchiveFileReader::read_cb(archive*, void* self, const void** buf)
{
    auto* me = static_cast<ArchiveFileReader*>(self);
    if (!me->queue_.pop(me->current_))
        return 0;
    *buf = me->current_->data();
    return static_cast<la_ssize_t>(me->current_->size());
}

void ArchiveFileReader::finish_producer()
{
    // libarchive stops at the tar's end marker: drain the rest so the thread can end.
    stop_decompressing_ = true;
    Chunk rest;
    while (queue_.pop(rest)) {
    }
    if (producer_.joinable())
        producer_.join();
}

void ArchiveFileReader::for_each(const std::function<void(archive_entry*)>& fn)
{
    archive_entry* entry;
    for (;;) {
        int rc = archive_read_next_header(ar_, &entry);
        if (rc == ARCHIVE_EOF)
            return;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            std::string why = archive_error(ar_);
            finish_producer();
            if (!error_.empty())
                throw Error("XX001", error_);
            throw Error(sqlstate::data_exception, "\"" + path_ + "\" is damaged or truncated: " + why);
        }
        try {
            fn(entry);
        } catch (const Error& e) {
            // A member cut short is the symptom; a damaged compressed stream the cause.
            if (e.sqlstate() != sqlstate::data_exception)
                throw;
            finish_producer();
            if (!error_.empty())
                throw Error("XX001", error_);
            throw;
        }
    }
}

std::string ArchiveFileReader::file_sha256()
{
    finish_producer();
    if (!error_.empty())
        throw Error("XX001", error_);
    return hash_hex_;
}

}  // namespace warden
