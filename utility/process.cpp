#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

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
                               const std::string& stdout_path)
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
                          const std::string& stdout_path)
{
    return RunningProcess(argv, env, stdout_path).wait();
}

void run_checked(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                 const std::string& stdout_path)
{
    RunningProcess(argv, env, stdout_path).wait_checked();
}

std::string conninfo_with(const std::string& conninfo, const std::map<std::string, std::string>& overrides,
                          std::string* password)
{
    std::string source = conninfo;
    if (source.empty())
        if (const char* url = std::getenv("DATABASE_URL"); url && *url)
            source = url;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(source.c_str(), &err);
    if (!opts) {
        std::string msg = err ? err : "invalid connection string";
        PQfreemem(err);
        throw Error(sqlstate::invalid_parameter_value, "invalid connection string: " + msg);
    }
    auto quote = [](const std::string& v) {
        std::string out = "'";
        for (char c : v) {
            if (c == '\'' || c == '\\')
                out += '\\';
            out += c;
        }
        return out + "'";
    };
    std::string out;
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
        std::string key = o->keyword;
        if (overrides.count(key) || !o->val || !*o->val)
            continue;
        if (key == "password" && password) {
            *password = o->val;
            continue;
        }
        out += (out.empty() ? "" : " ") + key + "=" + quote(o->val);
    }
    PQconninfoFree(opts);
    for (const auto& [k, v] : overrides)
        out += (out.empty() ? "" : " ") + k + "=" + quote(v);
    return out;
}

}  // namespace warden
