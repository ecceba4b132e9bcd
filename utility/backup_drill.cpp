#include "backup_drill.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "backup_common.hpp"
#include "backup_logical.hpp"
#include "backup_restore.hpp"
#include "incremental_restore.hpp"
#include "connection.hpp"
#include "drill_account.hpp"
#include "error.hpp"
#include "process.hpp"

namespace fs = std::filesystem;

namespace warden {

namespace {

constexpr const char* kDrillPort = "54329";
constexpr int kStartTimeoutSeconds = 300;

// The server's socket goes in the scratch folder: libpq reads host as a list split at
// commas, and a socket path has a length limit. Checked before anything is created.
void check_socket_dir(const std::string& path)
{
    const std::size_t room = sizeof(sockaddr_un{}.sun_path) - std::strlen("/.s.PGSQL.") - std::strlen(kDrillPort) - 1;
    if (path.find(',') != std::string::npos || path.size() > room)
        throw Error(sqlstate::invalid_parameter_value,
                    "scratch directory \"" + path + "\" cannot hold the server's socket (a comma, or longer than " +
                        std::to_string(room) + " bytes)",
                    {}, "Give --scratch a shorter path without commas.");
}

// A scratch folder only warden can enter (0700, owned by the effective user): while the
// backup is restored into it nobody else can plant anything there.
std::string make_scratch(const std::string& requested)
{
    if (requested.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = fs::absolute(tmp && *tmp ? tmp : "/tmp").string() + "/warden-drill.XXXXXX";
        check_socket_dir(tmpl);
        if (!::mkdtemp(tmpl.data()))
            throw Error("58030", "could not create a scratch directory in " + tmpl);
        return tmpl;
    }
    std::string path = fs::absolute(requested).lexically_normal().string();
    while (path.size() > 1 && path.back() == '/')
        path.pop_back();
    check_socket_dir(path);
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        throw Error("58030", "could not create the scratch directory \"" + path + "\": " + std::strerror(errno));
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || !fs::is_empty(path))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "scratch directory \"" + path + "\" must be new, or an empty directory of this user");
    if (::chmod(path.c_str(), 0700) != 0)
        throw Error("58030", "could not chmod \"" + path + "\": " + std::strerror(errno));
    return path;
}

// The account the scratch server runs as; nullopt: as warden runs. Decided before
// anything is restored or recorded.
std::optional<OsUser> server_account(const std::string& backup_root, const std::string& os_user)
{
    struct stat st;
    if (::stat(backup_root.c_str(), &st) != 0)
        throw Error("58030", "could not stat \"" + backup_root + "\": " + std::strerror(errno));
    auto choice = drill::choose_server_account(::geteuid(), os_user, st.st_uid);
    if (choice.kind == drill::ServerAccount::Kind::current)
        return std::nullopt;
    OsUser user = choice.kind == drill::ServerAccount::Kind::named ? os_user_named(choice.name)
                                                                    : os_user_with_uid(choice.uid);
    if (::geteuid() != 0) {
        if (user.uid != ::geteuid())
            throw Error("42501", "--os-user " + user.name + " needs root: warden runs as uid " +
                                     std::to_string(::geteuid()));
        return std::nullopt;
    }
    if (user.uid == 0)
        throw Error("42501", "the scratch server cannot run as root (" + choice.why + " is " + user.name + ")", {},
                    "Give --os-user NAME, the account that runs PostgreSQL.");
    return user;
}

// Hands the restored tree to the server's account. Symlinks themselves are changed, never
// followed; the tree is ours and in a 0700 folder, so nothing can be swapped in meanwhile.
void chown_tree(const std::string& root, const OsUser& user)
{
    auto one = [&](const fs::path& p) {
        if (::fchownat(AT_FDCWD, p.c_str(), user.uid, user.gid, AT_SYMLINK_NOFOLLOW) != 0)
            throw Error("58030", "could not chown \"" + p.string() + "\": " + std::strerror(errno));
    };
    one(root);
    for (const auto& e : fs::recursive_directory_iterator(root))
        one(e.path());
}

// pg_hba.conf of the copy, written afresh: the restored one is replaced, never followed.
void write_trust_hba(const std::string& data)
{
    std::string path = data + "/pg_hba.conf";
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw Error("58030", "could not remove \"" + path + "\": " + std::strerror(errno));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error("58030", "could not create \"" + path + "\": " + std::strerror(errno));
    const std::string text = "local all all trust\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (::close(fd) != 0 || !ok)
        throw Error("58030", "could not write \"" + path + "\"");
}

// unix_socket_directories is a list: a directory is written in double quotes (doubled
// inside), so any path is one entry. It reaches postgres as one argv element, no shell.
std::string socket_directories_value(const std::string& dir)
{
    std::string out = "\"";
    for (char c : dir)
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string log_tail(const std::string& path)
{
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty())
            last = line;
    return last;
}

// Waits until the server accepts connections, as pg_ctl -w does; throws with the last
// line of its log if it exits or does not get there in time.
void wait_until_ready(ServerProcess& server, const std::string& scratch, const std::string& log)
{
    const char* keys[] = {"host", "port", "dbname", "connect_timeout", nullptr};
    const char* vals[] = {scratch.c_str(), kDrillPort, "postgres", "5", nullptr};
    double t0 = monotonic_seconds();
    for (;;) {
        if (PQpingParams(keys, vals, 0) == PQPING_OK)
            return;
        if (!server.running())
            throw Error("58000", "the scratch server exited (status " + std::to_string(server.exit_code()) +
                                     ") before accepting connections: " + log_tail(log));
        if (seconds_since(t0) > kStartTimeoutSeconds)
            throw Error("58000", "the scratch server did not accept connections within " +
                                     std::to_string(kStartTimeoutSeconds) + " s: " + log_tail(log));
        ::usleep(100 * 1000);
    }
}

DrillReport drill_physical(const std::string& root, const BackupInfo& info,
                           const DrillOptions& opts)
{
    // Decided before anything is recorded: a drill that cannot start a server says
    // nothing about the backup, and must not mark it as failed.
    std::optional<OsUser> as = server_account(root, opts.os_user);
    DrillReport r;
    std::string scratch = make_scratch(opts.scratch);
    std::string data = scratch + "/data";
    std::string log = scratch + "/server.log";
    std::unique_ptr<ServerProcess> server;
    try {
        double t0 = monotonic_seconds();
        PhysicalRestoreOptions ro;
        ro.target = data;
        ro.quiet = opts.quiet;
        for (const auto& t : info.tablespaces)
            ro.tablespace_map.emplace_back(t.oid, scratch + "/tablespace_" + t.oid);
        restore_backup_chain(root, info, ro);
        // The socket lives in the 0700 scratch folder and nothing listens on TCP, so
        // local trust reaches only this user (and root): the drill needs no password.
        write_trust_hba(data);
        if (as)
            chown_tree(scratch, *as);
        // postgres itself, not pg_ctl: pg_ctl runs the server through /bin/sh with the data
        // directory and -o in one string, where a quote or $(...) in the path would run.
        server = std::make_unique<ServerProcess>(
            std::vector<std::string>{"postgres", "-D", data, "-c", std::string("port=") + kDrillPort, "-c",
                                     "listen_addresses=", "-c",
                                     "unix_socket_directories=" + socket_directories_value(scratch), "-c",
                                     "archive_mode=off"},
            log, as);
        wait_until_ready(*server, scratch, log);
        r.restore_seconds = seconds_since(t0);

        double t1 = monotonic_seconds();
        // The bootstrap superuser owns everything amcheck needs to read. Its name is, as
        // initdb made it, the server's account: warden's own, or the one it switched to.
        Connection probe("host=" + conninfo_quote(scratch) + " port=" + kDrillPort + " dbname=postgres" +
                             (as ? " user=" + conninfo_quote(as->name) : std::string()),
                         false, "warden drill");
        auto su = probe.exec("SELECT rolname FROM pg_catalog.pg_roles WHERE oid = 10");
        std::string superuser = PQgetvalue(su.get(), 0, 0);
        run_checked({"pg_amcheck", "-h", scratch, "-p", kDrillPort, "-U", superuser, "--all", "--heapallindexed",
                     "--install-missing"});
        r.check_seconds = seconds_since(t1);
        r.ok = true;
        r.detail = "restored, started" + (as ? " as " + as->name : std::string()) +
                   " and passed pg_amcheck --heapallindexed";
    } catch (const std::exception& e) {  // any failure must reach the cleanup below
        r.ok = false;
        r.detail = e.what();
    }
    if (server)
        server->stop(SIGINT, 60);
    remove_tree(scratch);
    return r;
}

DrillReport drill_logical(const std::string& backup_path, const BackupInfo& info, const DrillOptions& opts)
{
    DrillReport r;
    std::string scratch_db = "warden_drill_" + std::to_string(::getpid());
    Connection admin(opts.conninfo, false, "warden drill");
    admin.exec("CREATE DATABASE " + scratch_db + " TEMPLATE template0");
    try {
        double t0 = monotonic_seconds();
        LogicalRestoreOptions o;
        o.conninfo = opts.conninfo;
        o.database = scratch_db;
        o.quiet = opts.quiet;
        auto report = restore_logical_backup(backup_path, info, o);
        r.restore_seconds = seconds_since(t0);
        r.ok = true;
        r.detail = "restored; row counts match for " + std::to_string(report.tables_checked) + " tables";
    } catch (const std::exception& e) {  // any failure must reach the cleanup below
        r.ok = false;
        r.detail = e.what();
    }
    try {
        admin.exec("DROP DATABASE IF EXISTS " + scratch_db + " WITH (FORCE)");
    } catch (const Error& e) {
        if (r.ok)
            r.detail += std::string("; could not drop the scratch database: ") + e.what();
    }
    return r;
}

}  // namespace

ScratchServer::ScratchServer(const std::string& root, const BackupInfo& info, const DrillOptions& opts)
{
    std::optional<OsUser> as = server_account(root, opts.os_user);
    scratch_ = make_scratch(opts.scratch);
    std::string data = scratch_ + "/data";
    std::string log = scratch_ + "/server.log";
    try {
        PhysicalRestoreOptions ro;
        ro.target = data;
        ro.quiet = opts.quiet;
        for (const auto& t : info.tablespaces)
            ro.tablespace_map.emplace_back(t.oid, scratch_ + "/tablespace_" + t.oid);
        restore_backup_chain(root, info, ro);
        // As for the drill: a private socket in the 0700 folder, no TCP, local trust.
        write_trust_hba(data);
        if (as)
            chown_tree(scratch_, *as);
        server_ = std::make_unique<ServerProcess>(
            std::vector<std::string>{"postgres", "-D", data, "-c", std::string("port=") + kDrillPort, "-c",
                                     "listen_addresses=", "-c",
                                     "unix_socket_directories=" + socket_directories_value(scratch_), "-c",
                                     "archive_mode=off"},
            log, as);
        wait_until_ready(*server_, scratch_, log);
        Connection probe(conninfo_for("postgres", as ? as->name : ""), false, "warden restore");
        auto su = probe.exec("SELECT rolname FROM pg_catalog.pg_roles WHERE oid = 10");
        superuser_ = PQgetvalue(su.get(), 0, 0);
    } catch (...) {
        stop();
        throw;
    }
}

ScratchServer::~ScratchServer() { stop(); }

void ScratchServer::stop() noexcept
{
    if (server_) {
        try {
            server_->stop(SIGINT, 60);
        } catch (...) {
        }
        server_.reset();
    }
    if (!scratch_.empty())
        remove_tree(scratch_);
    scratch_.clear();
}

std::string ScratchServer::conninfo_for(const std::string& database, const std::string& user) const
{
    return "host=" + conninfo_quote(scratch_) + " port=" + kDrillPort + " dbname=" + conninfo_quote(database) +
           (user.empty() ? std::string() : " user=" + conninfo_quote(user));
}

std::string ScratchServer::conninfo(const std::string& database) const { return conninfo_for(database, superuser_); }

DrillReport drill_backup(const std::string& root, BackupInfo info, const DrillOptions& opts)
{
    std::string backup_path = root + "/" + info.id;
    DrillReport r = info.kind == "physical" ? drill_physical(root, info, opts)
                                            : drill_logical(backup_path, info, opts);
    info.verified_at = now_iso8601();
    info.verify_ok = r.ok;
    if (r.ok)
        info.restore_seconds = r.restore_seconds;
    write_description(backup_path, info);
    record_verification_in_database(opts.conninfo, info, r.ok, "drill: " + r.detail);
    return r;
}

}  // namespace warden
