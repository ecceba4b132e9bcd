#include "sealed_dump.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "backup_key.hpp"
#include "encryption.hpp"
#include "error.hpp"
#include "fs/safe_file.hpp"

namespace warden {

namespace {
constexpr std::size_t kPipeChunk = 1 << 20;

std::pair<int, int> make_pipe()
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        throw Error("58000", std::string("pipe failed: ") + std::strerror(errno));
    return {p[0], p[1]};
}

// Reads exactly len bytes unless the file ends first; returns how many were read.
std::size_t read_full(int fd, char* out, std::size_t len, const std::string& what)
{
    std::size_t done = 0;
    while (done < len) {
        ssize_t n = ::read(fd, out + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58030", "could not read \"" + what + "\": " + std::strerror(errno));
        if (n == 0)
            break;
        done += static_cast<std::size_t>(n);
    }
    return done;
}

// False once the reader has gone (EPIPE): pg_restore -l stops after the table of contents.
bool write_pipe(int fd, const std::string& data)
{
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            return false;
        if (n < 0)
            throw Error("58030", std::string("could not write to pg_restore: ") + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// Opens dump.enc segment by segment into fd, each segment authenticated before it is
// written; throws naming the file when one does not.
void open_into(const std::string& backup_path, int out)
{
    const std::string what = backup_path + "/" + kSealedDumpFile;
    const std::string* secret = backup_secret();
    if (!secret)
        throw Error(sqlstate::invalid_parameter_value,
                    "the dump is encrypted: give --key-file FILE or set WARDEN_BACKUP_PASSPHRASE");
    fs::Dir dir = fs::Dir::open_no_follow(backup_path);
    auto fd = fs::open_untrusted_below(dir, kSealedDumpFile, dir.owner().uid);
    if (!fd)
        throw Error("XX001", std::string(kSealedDumpFile) + ": missing from the backup folder");
    try {
        std::string header(kEncryptedHeaderSize, '\0');
        if (read_full(fd->get(), header.data(), header.size(), what) != header.size())
            throw Error("XX001", "truncated: shorter than an encrypted file's header");
        FileOpener opener(*secret, header);
        auto read = [&](char* p, std::size_t n) { return read_full(fd->get(), p, n, what); };
        std::string plain;
        while (opener.next(read, plain))
            if (!write_pipe(out, plain))
                return;
    } catch (const Error& e) {
        throw Error(e.sqlstate(), std::string(kSealedDumpFile) + ": " + e.what());
    }
}
}  // namespace

SealedDumpWriter::SealedDumpWriter(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                                   std::vector<int> inherit_fds, const std::string& path)
    : path_(path)
{
    auto [r, w] = make_pipe();
    argv.push_back("-f");
    argv.push_back("/proc/self/fd/" + std::to_string(w));
    inherit_fds.push_back(w);
    try {
        process_ = std::make_unique<RunningProcess>(argv, env, "", inherit_fds);
    } catch (...) {
        ::close(r);
        ::close(w);
        throw;
    }
    // Only pg_dump holds the write end now: its exit is the end of the stream.
    ::close(w);
    thread_ = std::thread([this, fd = r] { seal_loop(fd); });
}

void SealedDumpWriter::seal_loop(int fd)
{
    try {
        CompressedWriter out(path_, Compression::none, 0, 1);
        std::string buf(kPipeChunk, '\0');
        for (;;) {
            ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                throw Error("58030", std::string("could not read pg_dump's output: ") + std::strerror(errno));
            if (n == 0)
                break;
            out.write(buf.data(), static_cast<std::size_t>(n));
        }
        written_ = out.finish();
    } catch (...) {
        error_ = std::current_exception();
    }
    // Closing the read end makes a pg_dump still writing fail instead of blocking.
    ::close(fd);
}

SealedDumpWriter::~SealedDumpWriter()
{
    process_.reset();
    if (thread_.joinable())
        thread_.join();
}

WrittenFile SealedDumpWriter::wait_checked()
{
    std::exception_ptr failed;
    try {
        process_->wait_checked();
    } catch (...) {
        failed = std::current_exception();
    }
    thread_.join();
    // The sealing side's error (disk full) is the cause when both failed.
    if (error_)
        std::rethrow_exception(error_);
    if (failed)
        std::rethrow_exception(failed);
    return written_;
}

void run_on_sealed_dump(std::vector<std::string> argv, const std::string& backup_path,
                        const std::map<std::string, std::string>& env, const std::string& stdout_path,
                        std::vector<int> inherit_fds)
{
    auto [r, w] = make_pipe();
    // A reader that stops early (pg_restore -l, or an error) is EPIPE, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<RunningProcess> process;
    try {
        process = std::make_unique<RunningProcess>(argv, env, stdout_path, inherit_fds, r);
    } catch (...) {
        ::close(r);
        ::close(w);
        throw;
    }
    ::close(r);
    std::exception_ptr error;
    std::thread feeder([&error, fd = w, &backup_path] {
        try {
            open_into(backup_path, fd);
        } catch (...) {
            error = std::current_exception();
        }
        ::close(fd);
    });
    std::exception_ptr failed;
    try {
        process->wait_checked();
    } catch (...) {
        failed = std::current_exception();
    }
    feeder.join();
    if (error)
        std::rethrow_exception(error);
    if (failed)
        std::rethrow_exception(failed);
}

}  // namespace warden
