// Writes one archive to disk, compressed by several threads at once.
//
// The raw stream is cut into blocks; each block becomes an independent gzip member or
// zstd frame, so the blocks compress in parallel and the file is still one valid .gz or
// .zst (both formats allow concatenation). A writer thread puts the blocks back in order,
// hashes what it writes and reports ENOSPC and friends as errors.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bounded_queue.hpp"
#include "checksum.hpp"

namespace warden {

class FileSealer;

enum class Compression { none, gzip, zstd };

Compression parse_compression(const std::string& name);  // throws warden::Error
const char* compression_name(Compression c);
const char* compression_suffix(Compression c);  // "", ".gz", ".zst"
int default_level(Compression c);

// Compresses one block as a self-contained gzip member / zstd frame.
std::string compress_block(Compression c, int level, const char* data, std::size_t len);

struct WrittenFile {
    std::uint64_t raw_bytes = 0;
    std::uint64_t stored_bytes = 0;
    std::string sha256;  // of the stored bytes
};

class CompressedWriter {
public:
    CompressedWriter(const std::string& path, Compression c, int level, int threads);
    ~CompressedWriter();
    CompressedWriter(const CompressedWriter&) = delete;
    CompressedWriter& operator=(const CompressedWriter&) = delete;

    void write(const char* data, std::size_t len);  // rethrows a worker's error
    WrittenFile finish();                            // flushes, fsyncs and closes

private:
    struct Job {
        std::uint64_t seq;
        std::string raw;
    };
    void submit_block();
    void compress_loop();
    void write_loop();
    void fail(std::exception_ptr e);
    void check_failed();
    void stop_threads();

    std::string path_;
    Compression method_;
    int level_;
    int fd_ = -1;
    std::string block_;
    std::uint64_t next_seq_ = 0;
    std::uint64_t raw_bytes_ = 0;
    BoundedQueue<Job> jobs_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::uint64_t, std::string> done_;  // compressed blocks waiting for their turn
    std::uint64_t written_seq_ = 0;
    std::uint64_t stored_bytes_ = 0;
    bool all_submitted_ = false;
    std::exception_ptr error_;
    Sha256 hash_;
    // Set while backups are encrypted (backup_key.hpp): each compressed block becomes
    // one AES-256-GCM segment, the file ends with an empty last one.
    std::unique_ptr<FileSealer> sealer_;
    std::vector<std::thread> workers_;
    std::thread writer_;
};

}  // namespace warden
