#include "backup_drill.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "backup_common.hpp"
#include "backup_logical.hpp"
#include "backup_restore.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "process.hpp"

namespace fs = std::filesystem;

namespace warden {

namespace {

constexpr const char* kDrillPort = "54329";

std::string make_scratch(const std::string& requested)
{
    if (!requested.empty()) {
        std::error_code ec;
        fs::create_directories(requested, ec);
        if (!fs::is_directory(requested) || !fs::is_empty(requested))
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        "scratch directory \"" + requested + "\" must be new or empty");
        return fs::absolute(requested).string();
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/warden-drill.XXXXXX";
    if (!::mkdtemp(tmpl.data()))
        throw Error("58030", "could not create a scratch directory in " + tmpl);
    return tmpl;
}

DrillReport drill_physical(const std::string& backup_path, const BackupInfo& info, const DrillOptions& opts)
{
    // Refused before anything is recorded: a drill that cannot start a server says
    // nothing about the backup, and must not mark it as failed.
    if (::geteuid() == 0)
        throw Error("42501", "a physical drill cannot run as root: PostgreSQL refuses to start as root", {},
                    "Run it as the account that runs PostgreSQL (for example: runuser -u postgres -- warden ...).");
    DrillReport r;
    std::string scratch = make_scratch(opts.scratch);
    std::string data = scratch + "/data";
    std::string pg_ctl = find_pg_program("pg_ctl");
    bool started = false;
    try {
        double t0 = monotonic_seconds();
        PhysicalRestoreOptions ro;
        ro.target = data;
        ro.quiet = opts.quiet;
        for (const auto& t : info.tablespaces)
            ro.tablespace_map.emplace_back(t.oid, scratch + "/tablespace_" + t.oid);
        restore_physical_backup(backup_path, info, ro);
        ::chmod(scratch.c_str(), 0700);
        // The socket lives in the 0700 scratch folder and nothing listens on TCP, so
        // local trust reaches only this user: the drill needs no password.
        std::ofstream(data + "/pg_hba.conf", std::ios::trunc) << "local all all trust\n";
        // Set before the start: a start that times out may still leave a server running,
        // and stopping one that is not running does no harm.
        started = true;
        run_checked({pg_ctl, "-D", data, "-w", "-t", "300", "-l", scratch + "/server.log", "-o",
                     std::string("-c port=") + kDrillPort + " -c listen_addresses='' -c unix_socket_directories='" +
                         scratch + "' -c archive_mode=off",
                     "start"});
        r.restore_seconds = seconds_since(t0);

        double t1 = monotonic_seconds();
        // The bootstrap superuser owns everything amcheck needs to read.
        Connection probe("host='" + scratch + "' port=" + kDrillPort + " dbname=postgres", false, "warden drill");
        auto su = probe.exec("SELECT rolname FROM pg_catalog.pg_roles WHERE oid = 10");
        std::string superuser = PQgetvalue(su.get(), 0, 0);
        run_checked({"pg_amcheck", "-h", scratch, "-p", kDrillPort, "-U", superuser, "--all", "--heapallindexed",
                     "--install-missing"});
        r.check_seconds = seconds_since(t1);
        r.ok = true;
        r.detail = "restored, started and passed pg_amcheck --heapallindexed";
    } catch (const std::exception& e) {  // any failure must reach the cleanup below
        r.ok = false;
        r.detail = e.what();
    }
    if (started)
        run_process({pg_ctl, "-D", data, "-m", "fast", "-w", "stop"});
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

DrillReport drill_backup(const std::string& root, BackupInfo info, const DrillOptions& opts)
{
    std::string backup_path = root + "/" + info.id;
    DrillReport r = info.kind == "physical" ? drill_physical(backup_path, info, opts)
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
