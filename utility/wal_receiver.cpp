#include "wal_receiver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "connection.hpp"
#include "error.hpp"
#include "wal_archive.hpp"
#include "wal_names.hpp"

namespace warden::walreceiver {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using walarchive::Archive;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

void log(const std::string& msg)
{
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::print(stderr, "{:%Y-%m-%d %H:%M:%S} UTC warden wal receive: {}\n", tm, msg);
}

// A failure on our side (disk full, I/O error, a folder of another cluster): retrying
// cannot help, and the receiver must stop before it acknowledges anything more.
struct LocalFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class F>
auto local_io(F&& f) -> decltype(f())
{
    try {
        return f();
    } catch (const LocalFailure&) {
        throw;
    } catch (const std::exception& e) {
        throw LocalFailure(e.what());
    }
}

[[noreturn]] void io_failure(const std::string& what, const fs::path& p)
{
    int e = errno;
    throw LocalFailure(fmt::format("{} \"{}\": {}{}", what, p.string(), std::strerror(e),
                                   e == ENOSPC ? " (disk full)" : ""));
}

void put64(char* p, std::uint64_t v)
{
    for (int i = 7; i >= 0; --i, v >>= 8)
        p[i] = static_cast<char>(v & 0xff);
}

std::uint64_t get64(const char* p)
{
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

// Microseconds since 2000-01-01, the replication protocol's clock.
std::int64_t pg_now()
{
    using namespace std::chrono;
    auto us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    return us - 946684800LL * 1000000LL;
}

std::uint64_t parse_size_setting(const std::string& s)
{
    std::size_t i = 0;
    std::uint64_t n = std::stoull(s, &i);
    std::string unit = s.substr(i);
    if (unit == "kB")
        return n << 10;
    if (unit == "MB")
        return n << 20;
    if (unit == "GB")
        return n << 30;
    return n;
}

std::string quote_ident(const std::string& s)
{
    std::string out = "\"";
    for (char c : s) {
        if (c == '"')
            out += '"';
        out += c;
    }
    return out + "\"";
}

// One receiver per folder: an flock held for the life of the process.
class FolderLock {
public:
    explicit FolderLock(const fs::path& path)
    {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd_ < 0)
            io_failure("could not open", path);
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            char buf[32] = {};
            ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
            std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
            pid.erase(pid.find_last_not_of(" \n") + 1);
            ::close(fd_);
            throw Error(sqlstate::lock_not_available,
                        fmt::format("another receiver (pid {}) is already writing to {}", pid,
                                    path.parent_path().string()));
        }
        std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0)
            io_failure("could not write", path);
    }
    ~FolderLock() { ::close(fd_); }
    FolderLock(const FolderLock&) = delete;
    FolderLock& operator=(const FolderLock&) = delete;

private:
    int fd_ = -1;
};

// Compresses finished segments off the streaming path: a finished segment is already
// durable as <segment>.ready (renamed from .partial after fsync), so the flush position can
// be reported at once while zstd and SHA-256 run here.
class Compressor {
public:
    Compressor(Archive& archive, const Options& o)
        : ar_(archive), verbose_(o.verbose), ship_(o.ship), target_(o.ship_target), thread_([this] { loop(); })
    {
    }
    ~Compressor()
    {
        {
            std::lock_guard<std::mutex> l(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    Compressor(const Compressor&) = delete;
    Compressor& operator=(const Compressor&) = delete;

    void submit(const std::string& segment)
    {
        {
            std::lock_guard<std::mutex> l(mu_);
            queue_.push_back(segment);
        }
        cv_.notify_one();
    }

    // The error that stopped compression (disk full), if any.
    std::optional<std::string> failure()
    {
        std::lock_guard<std::mutex> l(mu_);
        return failure_;
    }

private:
    void loop()
    {
        // Niced: under load the database comes first; .ready files are durable meanwhile.
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
        for (;;) {
            std::string name;
            {
                std::unique_lock<std::mutex> l(mu_);
                cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty())
                    return;  // stopping, and everything submitted is done
                name = queue_.front();
            }
            try {
                compress(name);
            } catch (const std::exception& e) {
                if (!ship_) {
                    std::lock_guard<std::mutex> l(mu_);
                    failure_ = e.what();
                    queue_.clear();
                    return;
                }
                // The store is unreachable or refuses: the segment stays durable as .ready
                // (and the slot holds it on the server); try again, streaming goes on.
                log(fmt::format("could not push {} to {}: {}; retrying in {} s", name, target_, e.what(),
                                retry_ms_ / 1000.0));
                std::unique_lock<std::mutex> l(mu_);
                cv_.wait_for(l, std::chrono::milliseconds(retry_ms_), [&] { return stop_; });
                retry_ms_ = std::min(retry_ms_ * 2, 30000);
                if (stop_)
                    return;  // the .ready files are pushed by the next run
                continue;
            }
            retry_ms_ = 1000;
            std::lock_guard<std::mutex> l(mu_);
            queue_.pop_front();
        }
    }

    void compress(const std::string& name)
    {
        fs::path ready = ar_.dir() / (name + ".ready");
        std::string bytes = walarchive::read_file(ready);
        try {
            if (ship_)
                ship_(name, bytes);  // into the repository; nothing of it stays here
            else
                ar_.store(name, bytes);
        } catch (const Error& e) {
            // A different segment already under this name was set aside by store();
            // anything else (disk full) stops the receiver.
            if (std::string(e.what()).find("different content") == std::string::npos)
                throw;
            log(std::string("warning: ") + e.what());
        }
        fs::remove(ready);
        walarchive::fsync_path(ar_.dir(), true);
        if (verbose_)
            log(fmt::format("archived {}", name));
    }

    Archive& ar_;
    bool verbose_;
    std::function<void(const std::string&, const std::string&)> ship_;
    std::string target_;
    int retry_ms_ = 1000;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    bool stop_ = false;
    std::optional<std::string> failure_;
    std::thread thread_;  // last: starts once everything above is initialised
};

// One connection's worth of streaming: from connect to the end of the stream or an error.
class Session {
public:
    Session(const Options& o, Archive& archive, Compressor& compressor)
        : o_(o), ar_(archive), compressor_(compressor) {}
    ~Session() { close_segment(); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void run();

private:
    struct NextTimeline {
        wal::TimeLine tli;
        wal::Lsn start;
    };

    std::optional<NextTimeline> stream(wal::Lsn start);
    void handle_xlogdata(const char* buf, int len);
    std::optional<NextTimeline> end_of_copy();
    void open_segment(std::uint64_t segno);
    void finish_segment(bool partial);
    void close_segment();
    void flush();
    void send_feedback();
    void ensure_history(wal::TimeLine tli, bool required);
    wal::Lsn resume_point(wal::Lsn slot_restart) const;

    const Options& o_;
    Archive& ar_;
    Compressor& compressor_;
    std::unique_ptr<Connection> conn_;
    std::uint64_t seg_size_ = wal::kDefaultSegmentSize;
    wal::TimeLine tli_ = 0;
    wal::Lsn write_pos_ = 0;  // next byte to write
    wal::Lsn flush_pos_ = 0;  // everything before it is fsynced
    int fd_ = -1;
    std::string fd_name_;     // segment name of the open .partial
    bool reply_requested_ = false;
    Clock::time_point last_status_{}, last_fsync_{};
};

void Session::run()
{
    std::string app = o_.application_name.empty() ? o_.slot : o_.application_name;
    // synchronous_standby_names must be able to name the receiver, so its name beats an
    // inherited PGAPPNAME; an application_name in the conninfo still wins.
    ::setenv("PGAPPNAME", app.c_str(), 1);
    conn_ = std::make_unique<Connection>(o_.conninfo, true, app);

    auto ident = conn_->exec("IDENTIFY_SYSTEM");
    std::string sysid = PQgetvalue(ident.get(), 0, 0);
    auto server_tli = static_cast<wal::TimeLine>(std::stoul(PQgetvalue(ident.get(), 0, 1)));
    wal::Lsn server_pos = wal::parse_lsn(PQgetvalue(ident.get(), 0, 2));
    seg_size_ = parse_size_setting(PQgetvalue(conn_->exec("SHOW wal_segment_size").get(), 0, 0));
    local_io([&] { ar_.record_identity(sysid, seg_size_); });

    // A permanent slot keeps the server from recycling WAL the receiver has not yet made
    // durable, across restarts of either side.
    auto slot = conn_->exec("READ_REPLICATION_SLOT " + quote_ident(o_.slot));
    if (PQgetisnull(slot.get(), 0, 0)) {
        conn_->exec("CREATE_REPLICATION_SLOT " + quote_ident(o_.slot) + " PHYSICAL RESERVE_WAL");
        log(fmt::format("created physical replication slot {}", o_.slot));
        slot = conn_->exec("READ_REPLICATION_SLOT " + quote_ident(o_.slot));
    } else if (std::string(PQgetvalue(slot.get(), 0, 0)) != "physical") {
        throw LocalFailure(fmt::format("replication slot {} is not a physical slot", o_.slot));
    }
    wal::Lsn slot_restart =
        PQgetisnull(slot.get(), 0, 1) ? server_pos : wal::parse_lsn(PQgetvalue(slot.get(), 0, 1));

    std::vector<wal::HistoryEntry> history;
    if (server_tli > 1) {
        ensure_history(server_tli, true);
        history = wal::parse_history(local_io([&] { return ar_.read_history(server_tli); }));
        for (const auto& h : history)
            if (h.tli > 1)
                ensure_history(h.tli, false);
    }
    auto chain = wal::timeline_chain(server_tli, history);

    wal::Lsn start = resume_point(slot_restart);
    tli_ = server_tli;
    for (const auto& span : chain)
        if (span.begin <= start && start < span.end) {
            tli_ = span.tli;
            break;
        }
    log(fmt::format("streaming from {} on timeline {} (server at {} on timeline {}, slot {}{})",
                    wal::format_lsn(start), tli_, wal::format_lsn(server_pos), server_tli,
                    o_.slot, o_.synchronous ? ", synchronous" : ""));

    for (;;) {
        auto next = stream(start);
        if (!next)
            return;
        log(fmt::format("timeline {} ended at {}; following timeline {}", tli_,
                        wal::format_lsn(next->start), next->tli));
        tli_ = next->tli;
        ensure_history(tli_, true);
        start = wal::segment_start(wal::segment_of(next->start, seg_size_), seg_size_);
    }
}

// Where streaming resumes: after the newest finished segment, or at the start of the live
// .partial (it is rewritten from its start, as pg_receivewal does), or for an empty
// folder at the slot's restart point.
wal::Lsn Session::resume_point(wal::Lsn slot_restart) const
{
    auto segs = local_io([&] { return ar_.segments(); });
    auto live = local_io([&] { return ar_.live_partial(); });
    if (segs.empty())
        return wal::segment_start(wal::segment_of(slot_restart, seg_size_), seg_size_);
    std::uint64_t newest = 0;
    for (const auto& s : segs)
        newest = std::max(newest, s.segno);
    std::string newest_name = live ? wal::segment_name(live->first.tli, newest, seg_size_) : "";
    bool newest_is_live = live && live->first.segno == newest &&
                          !fs::exists(ar_.dir() / (newest_name + ".zst")) &&
                          !fs::exists(ar_.dir() / (newest_name + ".ready"));
    return wal::segment_start(newest_is_live ? newest : newest + 1, seg_size_);
}

void Session::ensure_history(wal::TimeLine tli, bool required)
{
    if (tli <= 1 || ar_.has_history(tli))
        return;
    PGresult* raw = PQexec(conn_->get(), fmt::format("TIMELINE_HISTORY {}", tli).c_str());
    ResultPtr res(raw);
    if (PQresultStatus(raw) != PGRES_TUPLES_OK || PQntuples(raw) != 1 || PQnfields(raw) != 2) {
        if (required)
            throw_result_error(raw, conn_->get());
        return;
    }
    std::string content(PQgetvalue(raw, 0, 1), static_cast<std::size_t>(PQgetlength(raw, 0, 1)));
    local_io([&] { return ar_.store(wal::history_name(tli), content); });
    // Kept here too: resume_point() and the next run read the history locally.
    if (o_.ship)
        local_io([&] { o_.ship(wal::history_name(tli), content); });
    log(fmt::format("archived {}", wal::history_name(tli)));
}

std::optional<Session::NextTimeline> Session::stream(wal::Lsn start)
{
    conn_->exec(fmt::format("START_REPLICATION SLOT {} PHYSICAL {} TIMELINE {}", quote_ident(o_.slot),
                            wal::format_lsn(start), tli_));
    write_pos_ = flush_pos_ = start;
    send_feedback();
    PGconn* c = conn_->get();
    const auto status_every = std::chrono::milliseconds(o_.status_interval_ms);
    const auto fsync_every = std::chrono::milliseconds(o_.fsync_interval_ms);

    while (!g_stop) {
        if (auto failed = compressor_.failure())
            throw LocalFailure(*failed);
        for (;;) {
            char* buf = nullptr;
            int n = PQgetCopyData(c, &buf, 1);
            if (n == 0)
                break;
            if (n == -1)
                return end_of_copy();
            if (n < 0)
                throw Error("08006", fmt::format("could not read the WAL stream: {}", PQerrorMessage(c)));
            std::unique_ptr<char, decltype(&PQfreemem)> guard(buf, &PQfreemem);
            if (buf[0] == 'w')
                handle_xlogdata(buf, n);
            else if (buf[0] == 'k') {
                if (n < 18)
                    throw Error("08P01", "keepalive message too short");
                reply_requested_ = reply_requested_ || buf[17] != 0;
            } else
                throw Error("08P01", fmt::format("unexpected streaming message type '{}'", buf[0]));
        }

        auto now = Clock::now();
        bool unflushed = write_pos_ > flush_pos_;
        if (unflushed && (o_.synchronous || reply_requested_ || now - last_fsync_ >= fsync_every)) {
            flush();
            send_feedback();
        } else if (reply_requested_ || now - last_status_ >= status_every) {
            send_feedback();
        }
        reply_requested_ = false;

        auto wake = last_status_ + status_every;
        if (write_pos_ > flush_pos_)
            wake = std::min(wake, last_fsync_ + fsync_every);
        auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count();
        pollfd p{PQsocket(c), POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(wait_ms, 0, 1000)));
        if (rc < 0 && errno != EINTR)
            throw Error("08006", fmt::format("poll failed: {}", std::strerror(errno)));
        if (rc > 0 && PQconsumeInput(c) == 0)
            throw Error("08006", fmt::format("could not receive data from WAL stream: {}",
                                             PQerrorMessage(c)));
    }
    // Stopping: make what was received durable and say so before closing.
    flush();
    send_feedback();
    return std::nullopt;
}

void Session::handle_xlogdata(const char* buf, int len)
{
    constexpr int kHeader = 1 + 8 + 8 + 8;
    if (len < kHeader)
        throw Error("08P01", "WAL data message too short");
    wal::Lsn data_start = get64(buf + 1);
    if (data_start != write_pos_)
        throw Error("08P01", fmt::format("server sent WAL at {}, expected {}", wal::format_lsn(data_start),
                                         wal::format_lsn(write_pos_)));
    const char* data = buf + kHeader;
    std::size_t left = static_cast<std::size_t>(len - kHeader);
    while (left > 0) {
        std::uint64_t segno = wal::segment_of(write_pos_, seg_size_);
        std::uint64_t off = write_pos_ % seg_size_;
        if (fd_ < 0) {
            if (off != 0)
                throw Error("08P01", "WAL stream does not start at a segment boundary");
            open_segment(segno);
        }
        std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(left, seg_size_ - off));
        std::size_t done = 0;
        while (done < chunk) {
            ssize_t w = ::pwrite(fd_, data + done, chunk - done, static_cast<off_t>(off + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                io_failure("could not write", ar_.dir() / (fd_name_ + ".partial"));
            done += static_cast<std::size_t>(w);
        }
        write_pos_ += chunk;
        data += chunk;
        left -= chunk;
        if (write_pos_ % seg_size_ == 0)
            finish_segment(false);
    }
}

std::optional<Session::NextTimeline> Session::end_of_copy()
{
    PGconn* c = conn_->get();
    if (PQputCopyEnd(c, nullptr) <= 0 || PQflush(c) != 0)
        throw Error("08006", fmt::format("could not end the copy stream: {}", PQerrorMessage(c)));
    std::optional<NextTimeline> next;
    while (PGresult* raw = PQgetResult(c)) {
        ResultPtr res(raw);
        auto st = PQresultStatus(raw);
        if (st == PGRES_TUPLES_OK && PQntuples(raw) == 1 && PQnfields(raw) >= 2)
            next = NextTimeline{static_cast<wal::TimeLine>(std::stoul(PQgetvalue(raw, 0, 0))),
                                wal::parse_lsn(PQgetvalue(raw, 0, 1))};
        else if (st != PGRES_COMMAND_OK)
            throw_result_error(raw, c);
    }
    if (!next) {
        flush();
        log("the server ended streaming");
        return std::nullopt;
    }
    if (next->tli <= tli_ || next->start > write_pos_)
        throw Error("08P01", fmt::format("server announced timeline {} at {} after timeline {} ended at {}",
                                         next->tli, wal::format_lsn(next->start), tli_,
                                         wal::format_lsn(write_pos_)));
    // The old timeline's last segment stays archived as <segment>.partial: recovery reads the
    // new timeline's copy of that segment, but the tail is kept for forensics.
    if (fd_ >= 0)
        finish_segment(true);
    flush_pos_ = write_pos_;
    return next;
}

void Session::open_segment(std::uint64_t segno)
{
    fd_name_ = wal::segment_name(tli_, segno, seg_size_);
    fs::path path = ar_.dir() / (fd_name_ + ".partial");
    local_io([&] {
        // A live segment left by an earlier run is rewritten from its start; one on
        // another timeline is stale now that this segment comes from the current one.
        for (const auto& e : fs::directory_iterator(ar_.dir())) {
            std::string n = e.path().filename().string();
            if (wal::classify(n) == wal::FileKind::partial_segment && n != path.filename().string())
                fs::remove(e.path());
        }
    });
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd_ < 0)
        io_failure("could not create", path);
    // Zero-filled to full size up front, as pg_receivewal does: later fsyncs then flush
    // data only (no file size change to journal), and a full disk shows up here, before
    // any of the segment is acknowledged.
    static const std::string zeros(1 << 20, '\0');
    for (std::uint64_t off = 0; off < seg_size_; off += zeros.size()) {
        auto len = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), seg_size_ - off));
        std::size_t done = 0;
        while (done < len) {
            ssize_t w = ::pwrite(fd_, zeros.data() + done, len - done, static_cast<off_t>(off + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                io_failure("could not write", path);
            done += static_cast<std::size_t>(w);
        }
    }
    if (::fsync(fd_) != 0)
        io_failure("could not fsync", path);
    local_io([&] { walarchive::fsync_path(ar_.dir(), true); });
    last_fsync_ = Clock::now();
}

// A segment is complete (or its timeline ended): compress it into the archive with its
// checksum, then drop the live file.
void Session::finish_segment(bool partial)
{
    fs::path path = ar_.dir() / (fd_name_ + ".partial");
    if (::fsync(fd_) != 0)
        io_failure("could not fsync", path);
    ::close(fd_);
    fd_ = -1;
    if (partial) {
        // A timeline's last segment (rare): stored at once as <segment>.partial.
        std::string bytes = local_io([&] { return walarchive::read_file(path); });
        std::string name = fd_name_ + ".partial";
        try {
            local_io([&] { return ar_.store(name, bytes); });
            if (o_.ship)
                local_io([&] { o_.ship(name, bytes); });
        } catch (const LocalFailure& e) {
            if (std::string(e.what()).find("different content") == std::string::npos)
                throw;
            log(std::string("warning: ") + e.what());
        }
        local_io([&] {
            fs::remove(path);
            walarchive::fsync_path(ar_.dir(), true);
        });
    } else {
        local_io([&] {
            fs::rename(path, ar_.dir() / (fd_name_ + ".ready"));
            walarchive::fsync_path(ar_.dir(), true);
        });
        compressor_.submit(fd_name_);
    }
    flush_pos_ = write_pos_;
}

void Session::close_segment()
{
    if (fd_ >= 0) {
        ::fsync(fd_);
        ::close(fd_);
        fd_ = -1;
    }
}

void Session::flush()
{
    if (fd_ >= 0 && write_pos_ > flush_pos_ && ::fdatasync(fd_) != 0)
        io_failure("could not fsync", ar_.dir() / (fd_name_ + ".partial"));
    flush_pos_ = write_pos_;
    last_fsync_ = Clock::now();
}

// Standby status update: written and flushed up to here; never applied (no replay).
void Session::send_feedback()
{
    char msg[1 + 8 + 8 + 8 + 8 + 1];
    msg[0] = 'r';
    put64(msg + 1, write_pos_);
    put64(msg + 9, flush_pos_);
    put64(msg + 17, 0);
    put64(msg + 25, static_cast<std::uint64_t>(pg_now()));
    msg[33] = 0;
    PGconn* c = conn_->get();
    if (PQputCopyData(c, msg, sizeof msg) <= 0 || PQflush(c) != 0)
        throw Error("08006", fmt::format("could not send a status update: {}", PQerrorMessage(c)));
    last_status_ = Clock::now();
}

}  // namespace

int run(const Options& o)
{
    Archive archive(o.backup_dir);
    FolderLock lock(archive.dir() / "receiver.lock");

    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns at once on a stop signal
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    // A file size limit then fails the write (EFBIG) instead of killing the receiver.
    std::signal(SIGXFSZ, SIG_IGN);

    Compressor compressor(archive, o);
    // Segments finished but not yet compressed when an earlier run stopped.
    std::vector<std::string> ready;
    for (const auto& e : fs::directory_iterator(archive.dir())) {
        std::string n = e.path().filename().string();
        if (n.size() == 30 && n.compare(24, 6, ".ready") == 0)
            ready.push_back(n.substr(0, 24));
    }
    std::sort(ready.begin(), ready.end());
    for (const auto& n : ready)
        compressor.submit(n);

    int delay_ms = 1000;
    while (!g_stop) {
        try {
            Session session(o, archive, compressor);
            session.run();
            delay_ms = 1000;
            if (g_stop)
                break;
        } catch (const LocalFailure& e) {
            log(fmt::format("stopping: {}; nothing beyond what is on disk was acknowledged", e.what()));
            throw Error("58030", e.what());
        } catch (const std::exception& e) {
            if (o.no_loop)
                throw;
            log(fmt::format("{}; retrying in {} s", e.what(), delay_ms / 1000.0));
        }
        for (int waited = 0; waited < delay_ms && !g_stop; waited += 100)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        delay_ms = std::min(delay_ms * 2, o.max_retry_delay_ms);
    }
    if (auto failed = compressor.failure())
        throw Error("58030", *failed);
    log("stopped");
    return 0;
}

}  // namespace warden::walreceiver
