#include "backup_common.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <vector>

#include "checksum.hpp"
#include "fs/safe_file.hpp"
#include "process.hpp"

#include "error.hpp"
#include "version.hpp"

namespace stdfs = std::filesystem;

namespace warden {

namespace {
constexpr const char* kOwnerFile = "owner.pid";

std::atomic<int> g_signal{0};

void on_signal(int sig) { g_signal = sig; }

[[noreturn]] void io_error(const std::string& what, const std::string& path)
{
    throw Error("58030", "could not " + what + " \"" + path + "\": " + std::strerror(errno));
}
}  // namespace

static void fsync_path(const std::string& path, int open_flags)
{
    // Only our own files are fsynced by path; O_NOFOLLOW keeps a planted link inert.
    int fd = ::open(path.c_str(), open_flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        io_error("open", path);
    if (::fsync(fd) != 0) {
        int saved = errno;
        ::close(fd);
        errno = saved;
        io_error("fsync", path);
    }
    ::close(fd);
}

void fsync_file(const std::string& path) { fsync_path(path, O_RDONLY); }

// A rename is durable only once the directory holding it is fsynced too.
void fsync_dir(const std::string& path) { fsync_path(path, O_RDONLY | O_DIRECTORY); }

void remove_tree(const std::string& path) noexcept
{
    std::error_code ec;
    stdfs::remove_all(path, ec);
}

BackupFolder start_backup_folder(const std::string& root)
{
    // What pg_dump and pg_dumpall write under dump/ is created with the umask's mode:
    // a backup is as private as the data it holds, whatever umask the command ran under.
    ::umask(077);
    std::optional<fs::Dir> catalog;
    try {
        catalog = fs::make_dirs(root);
    } catch (const Error& e) {
        throw Error("58030", "backup folder \"" + root + "\" cannot be created", e.what());
    }
    BackupFolder f;
    f.root = stdfs::absolute(root).lexically_normal().string();
    if (f.root.size() > 1 && f.root.back() == '/')
        f.root.pop_back();
    std::string base = make_backup_id(std::time(nullptr));
    std::optional<fs::Dir> partial;
    for (int n = 1; !partial; ++n) {
        f.id = n == 1 ? base : base + "-" + std::to_string(n);
        f.partial = f.root + "/" + kPartialPrefix + f.id;
        if (!fs::stat_at(*catalog, f.id))
            partial = fs::try_make_private_dir(*catalog, kPartialPrefix + f.id);
    }
    // Prune tells a running backup from an abandoned one by this file: it must be there.
    try {
        fs::write_file_atomically(*partial, kOwnerFile, std::to_string(::getpid()) + "\n");
    } catch (...) {
        ::unlinkat(catalog->fd(), (kPartialPrefix + f.id).c_str(), AT_REMOVEDIR);
        throw;
    }
    return f;
}

void publish_backup_folder(const BackupFolder& f, const BackupInfo& info)
{
    fs::Dir catalog = fs::Dir::open(f.root);
    fs::Dir partial = catalog.open_subdir(kPartialPrefix + f.id);
    fs::remove_file(partial, kOwnerFile);
    write_description(f.partial, info);
    fs::fsync_dir(partial);
    fs::rename_in(catalog, kPartialPrefix + f.id, f.id);
}

void reserve_private_file(const BackupFolder& f, const std::string& name)
{
    fs::Fd fd = fs::create_exclusive(fs::Dir::open(f.partial), name);
    fd.close(f.partial + "/" + name);
}

void reserve_private_dir(const BackupFolder& f, const std::string& name)
{
    fs::make_private_dir(fs::Dir::open(f.partial), name);
}

void discard_backup_folder(const BackupFolder& f) noexcept { remove_tree(f.partial); }

bool partial_folder_abandoned(const std::string& path)
{
    std::optional<std::string> text;
    try {
        text = fs::read_small_file(fs::Dir::open_no_follow(path), kOwnerFile, 64);
    } catch (const Error&) {
        return true;
    }
    long pid = 0;
    try {
        pid = text ? std::stol(*text) : 0;
    } catch (const std::exception&) {
        return true;
    }
    if (pid <= 0)
        return true;
    return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

void install_interrupt_handlers()
{
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    // A file size limit then fails the write (EFBIG) like a full disk, instead of
    // killing the process with the partial folder in place.
    signal(SIGXFSZ, SIG_IGN);
}

void throw_if_interrupted()
{
    if (int sig = g_signal.load())
        throw Error("57014", std::string("interrupted by ") + strsignal(sig) +
                                 "; the partial backup was removed");
}

namespace {
std::string fd_sha256(int fd, const std::string& path)
{
    Sha256 h;
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58030", "could not read \"" + path + "\": " + std::strerror(errno));
        if (n == 0)
            break;
        h.update(buf.data(), static_cast<std::size_t>(n));
    }
    return h.hex_digest();
}
}  // namespace

std::string file_sha256(const std::string& path)
{
    fs::Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
        throw Error("58030", "could not open \"" + path + "\": " + std::strerror(errno));
    return fd_sha256(fd.get(), path);
}

void check_stored_files(const std::string& backup_path, const BackupInfo& info)
{
    fs::Dir backup = fs::Dir::open_no_follow(backup_path);
    uid_t owner = backup.owner().uid;
    for (const auto& f : info.files) {
        // Names come from backup.json: each component is checked, none is followed, and
        // the file must belong to the folder's owner.
        std::optional<fs::Fd> fd;
        try {
            fd = fs::open_untrusted_below(backup, f.name, owner);
        } catch (const Error& e) {
            throw Error("XX001", f.name + ": " + e.what());
        }
        if (!fd)
            throw Error("XX001", f.name + ": missing from the backup folder");
        struct stat st {};
        if (::fstat(fd->get(), &st) != 0)
            throw Error("58030", "could not stat \"" + backup.path_of(f.name) + "\": " + std::strerror(errno));
        auto size = static_cast<std::uint64_t>(st.st_size);
        if (size != f.size)
            throw Error("XX001", f.name + ": size " + std::to_string(size) + " differs from the recorded " +
                                     std::to_string(f.size) + " (truncated or damaged)");
        std::string sum = fd_sha256(fd->get(), backup.path_of(f.name));
        if (sum != f.sha256)
            throw Error("XX001", f.name + ": checksum mismatch (recorded " + f.sha256 + ", found " + sum + ")");
    }
}

std::string now_iso8601() { return iso8601_utc(std::time(nullptr)); }

double monotonic_seconds()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double seconds_since(double start) { return monotonic_seconds() - start; }

std::string describe_connection(PGconn* conn)
{
    std::string out;
    auto add = [&](const char* key, const char* val) {
        if (val && *val)
            out += (out.empty() ? "" : " ") + std::string(key) + "=" + val;
    };
    add("host", PQhost(conn));
    add("port", PQport(conn));
    add("user", PQuser(conn));
    add("dbname", PQdb(conn));
    return out;
}

std::optional<std::string> ledger_version(Connection& conn)
{
    try {
        auto has = conn.exec("SELECT to_regclass('warden.migrations') IS NOT NULL");
        if (std::string(PQgetvalue(has.get(), 0, 0)) != "t")
            return std::nullopt;
        auto res = conn.exec("SELECT version::text FROM warden.migrations WHERE state = 'applied' "
                             "ORDER BY version DESC LIMIT 1");
        if (PQntuples(res.get()) == 0)
            return std::nullopt;
        return std::string(PQgetvalue(res.get(), 0, 0));
    } catch (const Error&) {
        return std::nullopt;
    }
}

namespace {
// A plain connection for recording; nullopt when the extension's function is absent.
std::optional<std::string> with_recorder(const std::string& conninfo, const BackupInfo& info,
                                         const std::function<void(Connection&)>& fn)
{
    try {
        // A logical backup belongs to its database: its history goes there.
        Connection conn(info.kind == "logical" ? conninfo_with(conninfo, {{"dbname", info.database}}, nullptr)
                                              : conninfo,
                        false, "warden backup");
        auto has = conn.exec("SELECT to_regprocedure('warden.record_backup(text,text,text,"
                             "timestamptz,timestamptz,bigint,bigint,jsonb)') IS NOT NULL");
        if (std::string(PQgetvalue(has.get(), 0, 0)) != "t")
            return std::nullopt;
        fn(conn);
        return std::nullopt;
    } catch (const Error& e) {
        return std::string("not recorded in the database: ") + e.what();
    }
}
}  // namespace

std::optional<std::string> record_backup_in_database(const std::string& conninfo, const BackupInfo& b)
{
    return with_recorder(conninfo, b, [&](Connection& conn) {
        std::string details = to_json_text(b);
        conn.exec_params("SELECT warden.record_backup($1, $2, $3, $4, $5, $6, $7, $8)",
                         {b.id, b.kind, "completed", b.started_at, b.finished_at,
                          std::to_string(b.original_bytes), std::to_string(b.stored_bytes),
                          details});
    });
}

std::optional<std::string> record_verification_in_database(const std::string& conninfo,
                                                           const BackupInfo& b, bool ok,
                                                           const std::string& detail)
{
    return with_recorder(conninfo, b, [&](Connection& conn) {
        // The backup may have been taken from another host: make sure its row exists.
        conn.exec_params("SELECT warden.record_backup($1, $2, $3, $4, $5, $6, $7, $8)",
                         {b.id, b.kind, "completed", b.started_at, b.finished_at,
                          std::to_string(b.original_bytes), std::to_string(b.stored_bytes),
                          to_json_text(b)});
        conn.exec_params("SELECT warden.record_backup_verification($1, $2, $3, $4)",
                         {b.id, ok ? "true" : "false", b.verified_at.value_or(now_iso8601()), detail});
    });
}

}  // namespace warden
