// Running the PostgreSQL programs pg_warden orchestrates (pg_dump, pg_restore, postgres,
// pg_amcheck): argument vectors, never a shell; no secret in any argv.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warden {

struct ProcessResult {
    int exit_code = -1;
    std::string stderr_tail;  // the last lines the program wrote to stderr
};

// Runs argv[0] (found as find_pg_program does when it has no slash) with extra
// environment variables; stdout goes to stdout_path ("" = /dev/null). `inherit_fds` stay
// open in the program (every other descriptor of ours is close-on-exec).
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          const std::string& stdout_path = "", const std::vector<int>& inherit_fds = {});

// A program started in the background: wait() collects it like run_process does.
// stdin_fd >= 0 becomes its standard input (else it inherits ours).
class RunningProcess {
public:
    RunningProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                   const std::string& stdout_path = "", const std::vector<int>& inherit_fds = {},
                   int stdin_fd = -1);
    ~RunningProcess();  // waits if the caller did not (no zombie, no orphan)
    RunningProcess(const RunningProcess&) = delete;
    RunningProcess& operator=(const RunningProcess&) = delete;
    ProcessResult wait();
    // Throws warden::Error with the program's last stderr line unless it exited 0.
    void wait_checked();

private:
    std::string name_;
    int pid_ = -1;
    int errfd_ = -1;
};

// Throws warden::Error with the program's last stderr line unless it exits 0.
void run_checked(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                 const std::string& stdout_path = "", const std::vector<int>& inherit_fds = {});

// $WARDEN_PG_BINDIR/name, else the first `name` on PATH, else PostgreSQL 15's bindir.
std::string find_pg_program(const std::string& name);

// A value for a conninfo string: single-quoted, backslash before ' and \.
std::string conninfo_quote(const std::string& value);

// A conninfo string rebuilt from conninfo (or $DATABASE_URL when empty) with some
// keywords replaced, for pg_warden's own connections (it keeps any password). The third
// argument is accepted for callers written when it returned the password; pass nullptr.
std::string conninfo_with(const std::string& conninfo, const std::map<std::string, std::string>& overrides,
                          std::nullptr_t = nullptr);

// How a client program (pg_dump, pg_dumpall, pg_restore) reaches the server `conn` is
// connected to, with no secret in its argv. conninfo() holds every setting of `conn`
// (PQconninfo: the same server and user, services and PG* variables already resolved)
// except the secrets, the keywords libpq marks with dispchar '*' (password, sslpassword).
// The password goes to the program as PGPASSWORD, which libpq reads itself. libpq has no
// variable for the others, so they go in a service file that exists only in memory (a
// memfd, never on disk, gone with the last process holding it), named by
// PGSERVICEFILE=/proc/self/fd/N and selected by service= in conninfo().
class ClientConnection {
public:
    ClientConnection(PGconn* conn, const std::map<std::string, std::string>& overrides = {});
    ~ClientConnection();
    ClientConnection(const ClientConnection&) = delete;
    ClientConnection& operator=(const ClientConnection&) = delete;

    const std::string& conninfo() const { return conninfo_; }
    const std::map<std::string, std::string>& env() const { return env_; }
    // The descriptor the program must inherit (empty without secrets beyond the password).
    const std::vector<int>& inherit_fds() const { return fds_; }

private:
    std::string conninfo_;
    std::map<std::string, std::string> env_;
    std::vector<int> fds_;
};

// The OS account the drill's scratch server runs as when warden runs as root.
struct OsUser {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};
// getpwnam/getpwuid; throws warden::Error naming the account if it does not exist.
OsUser os_user_named(const std::string& name);
OsUser os_user_with_uid(uid_t uid);

// A server started without a shell: argv as given, stdin from /dev/null, stdout and stderr
// appended to log_path (created 0600, never through a symlink), and with `as`, under that
// account: initgroups, setgid, setuid before exec, each checked, so the program never
// runs as root by accident. stop() or the destructor ends it.
class ServerProcess {
public:
    ServerProcess(const std::vector<std::string>& argv, const std::string& log_path,
                  const std::optional<OsUser>& as);
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    // False once the program has exited (its exit status is then in exit_code()).
    bool running();
    int exit_code() const { return exit_code_; }
    // Sends `signal`, waits up to timeout_seconds, then SIGKILL; returns the exit status.
    int stop(int signal, int timeout_seconds);

private:
    pid_t pid_ = -1;
    int exit_code_ = -1;
};

}  // namespace warden
