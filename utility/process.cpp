#include "process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>

#include "connection.hpp"
#include "error.hpp"

namespace warden {

std::string find_pg_program(const std::string& name)
{
    if (const char* dir = std::getenv("WARDEN_PG_BINDIR"); dir && *dir)
        return std::string(dir) + "/" + name;
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        std::string dir;
        while (std::getline(ss, dir, ':')) {
            std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
            if (::access(candidate.c_str(), X_OK) == 0)
                return candidate;
        }
    }
    return "/usr/lib/postgresql/15/bin/" + name;
}

RunningProcess::RunningProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                               const std::string& stdout_path, const std::vector<int>& inherit_fds,
                               int stdin_fd)
{
    std::string program = argv.at(0).find('/') == std::string::npos ? find_pg_program(argv[0]) : argv[0];
    name_ = argv[0].substr(argv[0].rfind('/') == std::string::npos ? 0 : argv[0].rfind('/') + 1);
    int errpipe[2];
    if (::pipe2(errpipe, O_CLOEXEC) != 0)
        throw Error("58000", std::string("pipe failed: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(errpipe[0]);
        ::close(errpipe[1]);
        throw Error("58000", std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        for (const auto& [k, v] : env)
            ::setenv(k.c_str(), v.c_str(), 1);
        int out = ::open(stdout_path.empty() ? "/dev/null" : stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (out >= 0)
            ::dup2(out, STDOUT_FILENO);
        ::dup2(errpipe[1], STDERR_FILENO);
        if (stdin_fd >= 0)
            ::dup2(stdin_fd, STDIN_FILENO);
        for (int fd : inherit_fds)
            ::fcntl(fd, F_SETFD, 0);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args[0] = const_cast<char*>(program.c_str());
        args.push_back(nullptr);
        ::execv(program.c_str(), args.data());
        std::string msg = "cannot run " + program + ": " + std::strerror(errno) + "\n";
        if (::write(STDERR_FILENO, msg.data(), msg.size()) < 0) {
        }
        ::_exit(127);
    }
    ::close(errpipe[1]);
    pid_ = pid;
    errfd_ = errpipe[0];
}

RunningProcess::~RunningProcess()
{
    // Still running here means the caller is unwinding from an error: stop the program.
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        wait();
    }
}

ProcessResult RunningProcess::wait()
{
    std::string err;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(errfd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        err.append(buf, static_cast<std::size_t>(n));
        if (err.size() > 16384)
            err.erase(0, err.size() - 8192);
    }
    ::close(errfd_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    ProcessResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.stderr_tail = err;
    return r;
}

void RunningProcess::wait_checked()
{
    ProcessResult r = wait();
    if (r.exit_code == 0)
        return;
    std::string tail = r.stderr_tail;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' '))
        tail.pop_back();
    // The reason is the first "error:" line: what follows it is often a consequence (a
    // pg_dump worker fails to write, then the leader reports that a worker died).
    std::string reason;
    std::size_t start = 0;
    while (start < tail.size()) {
        std::size_t end = tail.find('\n', start);
        if (end == std::string::npos)
            end = tail.size();
        std::string line = tail.substr(start, end - start);
        if (line.find("error:") != std::string::npos) {
            reason = line;
            break;
        }
        start = end + 1;
    }
    if (reason.empty()) {
        auto nl = tail.rfind('\n');
        reason = nl == std::string::npos ? tail : tail.substr(nl + 1);
    }
    throw Error("58000",
                name_ + " failed (exit " + std::to_string(r.exit_code) + ")" + (reason.empty() ? "" : ": " + reason),
                tail);
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                          const std::string& stdout_path, const std::vector<int>& inherit_fds)
{
    return RunningProcess(argv, env, stdout_path, inherit_fds).wait();
}

void run_checked(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                 const std::string& stdout_path, const std::vector<int>& inherit_fds)
{
    RunningProcess(argv, env, stdout_path, inherit_fds).wait_checked();
}

std::string conninfo_quote(const std::string& v)
{
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + "'";
}

namespace {
using ConninfoOptions = std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)>;
}  // namespace

std::string conninfo_with(const std::string& conninfo, const std::map<std::string, std::string>& overrides,
                          std::nullptr_t)
{
    std::string source = conninfo;
    if (source.empty())
        if (const char* url = std::getenv("DATABASE_URL"); url && *url)
            source = url;
    char* err = nullptr;
    ConninfoOptions opts(PQconninfoParse(source.c_str(), &err), PQconninfoFree);
    if (!opts) {
        std::string msg = err ? err : "invalid connection string";
        PQfreemem(err);
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid connection string: " + mask_secrets(trim_message(msg), source));
    }
    std::string out;
    for (PQconninfoOption* o = opts.get(); o->keyword; ++o) {
        std::string key = o->keyword;
        if (overrides.count(key) || !o->val || !*o->val)
            continue;
        out += (out.empty() ? "" : " ") + key + "=" + conninfo_quote(o->val);
    }
    for (const auto& [k, v] : overrides)
        out += (out.empty() ? "" : " ") + k + "=" + conninfo_quote(v);
    return out;
}

ClientConnection::ClientConnection(PGconn* conn, const std::map<std::string, std::string>& overrides)
{
    ConninfoOptions opts(PQconninfo(conn), PQconninfoFree);
    if (!opts)
        throw Error(sqlstate::out_of_memory, "out of memory while reading the connection's settings");
    std::map<std::string, std::string> secrets;
    for (PQconninfoOption* o = opts.get(); o->keyword; ++o) {
        std::string key = o->keyword;
        // service: already applied to conn's values; fallback_application_name: the
        // program names itself.
        if (overrides.count(key) || !o->val || !*o->val || key == "service" ||
            key == "fallback_application_name")
            continue;
        if (o->dispchar && std::strchr(o->dispchar, '*')) {
            secrets[key] = o->val;
            continue;
        }
        conninfo_ += (conninfo_.empty() ? "" : " ") + key + "=" + conninfo_quote(o->val);
    }
    for (const auto& [k, v] : overrides)
        conninfo_ += (conninfo_.empty() ? "" : " ") + k + "=" + conninfo_quote(v);
    if (auto pw = secrets.find("password"); pw != secrets.end()) {
        env_["PGPASSWORD"] = pw->second;
        secrets.erase(pw);
    }
    if (secrets.empty())
        return;
    // A service file line is "key=value" up to the end of the line, trailing blanks cut.
    std::string text = "[warden_client]\n";
    for (const auto& [k, v] : secrets) {
        if (v.find_first_of("\r\n") != std::string::npos || std::isspace(static_cast<unsigned char>(v.back())))
            throw Error(sqlstate::invalid_parameter_value,
                        "the " + k + " of this connection ends in a blank or holds a line break, which "
                        "cannot be passed to pg_dump without putting it on its command line");
        text += k + "=" + v + "\n";
    }
    int fd = ::memfd_create("warden-client-secrets", MFD_CLOEXEC);
    if (fd < 0)
        throw Error("58000", std::string("memfd_create failed: ") + std::strerror(errno));
    fds_.push_back(fd);
    for (std::size_t done = 0; done < text.size();) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("58000", std::string("could not write the in-memory service file: ") + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    env_["PGSERVICEFILE"] = "/proc/self/fd/" + std::to_string(fd);
    conninfo_ += " service=warden_client";
}

ClientConnection::~ClientConnection()
{
    for (int fd : fds_)
        ::close(fd);
}

namespace {
OsUser from_passwd(const struct passwd* pw)
{
    return OsUser{pw->pw_name, pw->pw_uid, pw->pw_gid};
}
}  // namespace

OsUser os_user_named(const std::string& name)
{
    errno = 0;
    const struct passwd* pw = ::getpwnam(name.c_str());
    if (!pw)
        throw Error(sqlstate::invalid_parameter_value, "no OS account named \"" + name + "\"");
    return from_passwd(pw);
}

OsUser os_user_with_uid(uid_t uid)
{
    const struct passwd* pw = ::getpwuid(uid);
    if (!pw)
        throw Error(sqlstate::invalid_parameter_value, "no OS account has uid " + std::to_string(uid));
    return from_passwd(pw);
}

ServerProcess::ServerProcess(const std::vector<std::string>& argv, const std::string& log_path,
                             const std::optional<OsUser>& as)
{
    // Everything the child needs is prepared here: between fork and exec it only makes
    // system calls (no allocation, no lookups that could lock).
    std::string program = argv.at(0).find('/') == std::string::npos ? find_pg_program(argv[0]) : argv[0];
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args[0] = const_cast<char*>(program.c_str());
    args.push_back(nullptr);
    std::vector<gid_t> groups;
    if (as) {
        int n = 32;
        groups.resize(static_cast<std::size_t>(n));
        while (::getgrouplist(as->name.c_str(), as->gid, groups.data(), &n) < 0)
            groups.resize(static_cast<std::size_t>(n));
        groups.resize(static_cast<std::size_t>(n));
    }
    pid_t pid = ::fork();
    if (pid < 0)
        throw Error("58000", std::string("fork failed: ") + std::strerror(errno));
    if (pid == 0) {
        auto fail = [](const char* what) {
            const char* reason = std::strerror(errno);
            if (::write(STDERR_FILENO, what, std::strlen(what)) < 0 ||
                ::write(STDERR_FILENO, reason, std::strlen(reason)) < 0 || ::write(STDERR_FILENO, "\n", 1) < 0) {
            }
            ::_exit(127);
        };
        if (as) {
            if (::setgroups(groups.size(), groups.data()) != 0)
                fail("warden: setgroups failed: ");
            if (::setgid(as->gid) != 0)
                fail("warden: setgid failed: ");
            if (::setuid(as->uid) != 0)
                fail("warden: setuid failed: ");
            // setuid from root to another account cannot be undone; make sure it happened.
            if (as->uid != 0 && (::getuid() == 0 || ::geteuid() == 0 || ::setuid(0) == 0)) {
                errno = EPERM;
                fail("warden: could not leave root: ");
            }
        }
        // Opened as the server's account, so the log is the server's own file.
        int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
        if (log < 0)
            fail("warden: could not open the server log: ");
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0)
            ::dup2(null, STDIN_FILENO);
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
        ::execv(program.c_str(), args.data());
        fail("warden: could not run the server: ");
    }
    pid_ = pid;
}

bool ServerProcess::running()
{
    if (pid_ <= 0)
        return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0)
        return true;
    if (r == pid_)
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return false;
}

int ServerProcess::stop(int signal, int timeout_seconds)
{
    if (!running())
        return exit_code_;
    ::kill(pid_, signal);
    for (int i = 0; i < timeout_seconds * 10 && running(); ++i) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        ::nanosleep(&ts, nullptr);
    }
    if (running()) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        exit_code_ = 128 + SIGKILL;
        pid_ = -1;
    }
    return exit_code_;
}

ServerProcess::~ServerProcess()
{
    // Still running here means the caller is unwinding from an error: a fast shutdown.
    stop(SIGINT, 60);
}

}  // namespace warden
