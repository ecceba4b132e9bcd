// Running the PostgreSQL client programs pg_warden orchestrates (pg_dump, pg_restore,
// pg_ctl, pg_amcheck): no shell, passwords through the environment only.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace warden {

struct ProcessResult {
    int exit_code = -1;
    std::string stderr_tail;  // the last lines the program wrote to stderr
};

// Runs argv[0] (found as find_pg_program does when it has no slash) with extra
// environment variables; stdout goes to stdout_path ("" = /dev/null).
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          const std::string& stdout_path = "");

// A program started in the background: wait() collects it like run_process does.
class RunningProcess {
public:
    RunningProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                   const std::string& stdout_path = "");
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
                 const std::string& stdout_path = "");

// $WARDEN_PG_BINDIR/name, else the first `name` on PATH, else PostgreSQL 15's bindir.
std::string find_pg_program(const std::string& name);

// A conninfo string rebuilt from conninfo (or $DATABASE_URL when empty) with some
// keywords replaced. With a password pointer, the password is left out and stored there
// (for PGPASSWORD); without, it stays in the string (for pg_warden's own connections).
std::string conninfo_with(const std::string& conninfo, const std::map<std::string, std::string>& overrides,
                          std::string* password);

}  // namespace warden
