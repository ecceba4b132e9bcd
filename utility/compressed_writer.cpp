#include "compressed_writer.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "backup_key.hpp"
#include "encryption.hpp"
#include "error.hpp"
#include "fs/safe_file.hpp"

namespace warden {

namespace {
constexpr std::size_t kBlockSize = 4 << 20;

void write_all(int fd, const std::string& path, const char* data, std::size_t len)
{
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58030", "could not write \"" + path + "\": " + std::strerror(errno));
        data += n;
        len -= static_cast<std::size_t>(n);
    }
}
}  // namespace

Compression parse_compression(const std::string& name)
{
    if (name == "gzip")
        return Compression::gzip;
    if (name == "zstd")
        return Compression::zstd;
    if (name == "none")
        return Compression::none;
    throw Error(sqlstate::invalid_parameter_value, "unknown compression \"" + name + "\"", {},
                "Use gzip, zstd or none.");
}

const char* compression_name(Compression c)
{
    return c == Compression::gzip ? "gzip" : c == Compression::zstd ? "zstd" : "none";
}

const char* compression_suffix(Compression c)
{
    return c == Compression::gzip ? ".gz" : c == Compression::zstd ? ".zst" : "";
}

int default_level(Compression c)
{
    return c == Compression::gzip ? 6 : c == Compression::zstd ? 3 : 0;
}

std::string compress_block(Compression c, int level, const char* data, std::size_t len)
{
    if (c == Compression::none)
        return std::string(data, len);
    if (c == Compression::gzip) {
        z_stream zs{};
        // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
        if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw Error(sqlstate::internal_error, "could not initialise zlib");
        std::string out(deflateBound(&zs, len) + 32, '\0');
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
        zs.avail_in = static_cast<uInt>(len);
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = static_cast<uInt>(out.size());
        int rc = deflate(&zs, Z_FINISH);
        out.resize(zs.total_out);
        deflateEnd(&zs);
        if (rc != Z_STREAM_END)
            throw Error(sqlstate::internal_error, "zlib compression failed");
        return out;
    }
    // One context per compressor thread, freed when the thread ends.
    thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context(ZSTD_createCCtx(),
                                                                             &ZSTD_freeCCtx);
    ZSTD_CCtx* cctx = context.get();
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    std::string out(ZSTD_compressBound(len), '\0');
    std::size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data, len);
    if (ZSTD_isError(n))
        throw Error(sqlstate::internal_error,
                    std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

CompressedWriter::CompressedWriter(const std::string& path, Compression c, int level,
                                   int threads)
    : path_(path), method_(c), level_(level), jobs_(static_cast<std::size_t>(threads) + 1)
{
    std::size_t slash = path.rfind('/');
    fs::Dir dir = fs::Dir::open(slash == std::string::npos ? "." : path.substr(0, slash));
    fd_ = fs::create_exclusive(dir, path.substr(slash == std::string::npos ? 0 : slash + 1)).release();
    if (encrypting()) {
        sealer_ = std::make_unique<FileSealer>(*backup_secret());
        write_all(fd_, path_, sealer_->header().data(), sealer_->header().size());
        hash_.update(sealer_->header().data(), sealer_->header().size());
        stored_bytes_ += sealer_->header().size();
    }
    block_.reserve(kBlockSize);
    for (int i = 0; i < threads; ++i)
        workers_.emplace_back([this] { compress_loop(); });
    writer_ = std::thread([this] { write_loop(); });
}

CompressedWriter::~CompressedWriter()
{
    stop_threads();
    if (fd_ >= 0)
        ::close(fd_);
}

void CompressedWriter::stop_threads()
{
    jobs_.close();
    {
        std::lock_guard<std::mutex> lock(mu_);
        all_submitted_ = true;
        if (!error_)
            error_ = std::make_exception_ptr(Error(sqlstate::internal_error, "writer stopped"));
        cv_.notify_all();
    }
    for (auto& t : workers_)
        if (t.joinable())
            t.join();
    if (writer_.joinable())
        writer_.join();
}

void CompressedWriter::fail(std::exception_ptr e)
{
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_)
        error_ = e;
    cv_.notify_all();
    jobs_.close();
}

void CompressedWriter::check_failed()
{
    std::lock_guard<std::mutex> lock(mu_);
    if (error_)
        std::rethrow_exception(error_);
}

void CompressedWriter::write(const char* data, std::size_t len)
{
    raw_bytes_ += len;
    while (len > 0) {
        std::size_t take = std::min(len, kBlockSize - block_.size());
        block_.append(data, take);
        data += take;
        len -= take;
        if (block_.size() == kBlockSize)
            submit_block();
    }
}

void CompressedWriter::submit_block()
{
    check_failed();
    std::uint64_t seq;
    // Bound the compressed blocks waiting for the writer, as the job queue bounds the
    // raw ones: memory stays a few blocks per thread.
    {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return error_ || next_seq_ - written_seq_ < 2 * workers_.size() + 2; });
        if (error_)
            std::rethrow_exception(error_);
        seq = next_seq_++;
    }
    Job job{seq, std::move(block_)};
    block_ = std::string();
    block_.reserve(kBlockSize);
    if (!jobs_.push(std::move(job)))
        check_failed();
}

void CompressedWriter::compress_loop()
{
    try {
        Job job;
        while (jobs_.pop(job)) {
            std::string out = compress_block(method_, level_, job.raw.data(), job.raw.size());
            std::lock_guard<std::mutex> lock(mu_);
            done_.emplace(job.seq, std::move(out));
            cv_.notify_all();
        }
    } catch (...) {
        fail(std::current_exception());
    }
}

void CompressedWriter::write_loop()
{
    try {
        for (;;) {
            std::string block;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] {
                    return error_ || done_.count(written_seq_) ||
                           (all_submitted_ && written_seq_ == next_seq_);
                });
                if (error_)
                    return;
                auto it = done_.find(written_seq_);
                if (it == done_.end())
                    return;  // everything written
                block = std::move(it->second);
                done_.erase(it);
            }
            if (sealer_)
                block = sealer_->seal(block, false);
            write_all(fd_, path_, block.data(), block.size());
            hash_.update(block.data(), block.size());
            std::lock_guard<std::mutex> lock(mu_);
            stored_bytes_ += block.size();
            ++written_seq_;
            cv_.notify_all();
        }
    } catch (...) {
        fail(std::current_exception());
    }
}

WrittenFile CompressedWriter::finish()
{
    // An empty archive still gets one (empty) member so the file is a valid .gz/.zst.
    if (!block_.empty() || next_seq_ == 0)
        submit_block();
    jobs_.finish();
    {
        std::lock_guard<std::mutex> lock(mu_);
        all_submitted_ = true;
        cv_.notify_all();
    }
    for (auto& t : workers_)
        t.join();
    writer_.join();
    check_failed();
    if (sealer_) {
        std::string last = sealer_->seal("", true);
        write_all(fd_, path_, last.data(), last.size());
        hash_.update(last.data(), last.size());
        stored_bytes_ += last.size();
    }
    if (::fsync(fd_) != 0)
        throw Error("58030", "could not fsync \"" + path_ + "\": " + std::strerror(errno));
    if (::close(fd_) != 0) {
        fd_ = -1;
        throw Error("58030", "could not close \"" + path_ + "\": " + std::strerror(errno));
    }
    fd_ = -1;
    WrittenFile out;
    out.raw_bytes = raw_bytes_;
    out.stored_bytes = stored_bytes_;
    out.sha256 = hash_.hex_digest();
    return out;
}

}  // namespace warden
