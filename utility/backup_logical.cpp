#include "backup_logical.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <thread>

#include "backup_common.hpp"
#include "backup_key.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "process.hpp"
#include "sealed_dump.hpp"
#include "version.hpp"

namespace fs = std::filesystem;

namespace warden {

namespace {

// Ordinary tables of the database, extension members left out (CREATE EXTENSION
// recreates those with contents of its own). Names come quoted by the server.
constexpr const char* kTablesQuery = R"(
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY 1)";

// Every table's exact row count in the connection's snapshot. warden.count_rows, where
// the extension is installed and the role may call it, reads the table's smallest index
// and the visibility map instead of pushing every row through count(*): this runs beside
// pg_dump, which keeps both cores busy. One query counts every table it can answer for;
// count(*) for the others (no usable index, row-level security, no extension).
std::map<std::string, std::int64_t> count_rows(Connection& conn)
{
    // Named in the query only when it exists and may be called: both are checked when
    // the statement is planned, whichever CASE branch runs.
    auto probe = conn.exec(
        "SELECT coalesce(pg_catalog.has_function_privilege("
        "pg_catalog.to_regprocedure('warden.count_rows(regclass)'), 'EXECUTE'), false)");
    bool fast = std::string(PQgetvalue(probe.get(), 0, 0)) == "t";
    auto res = conn.exec(std::string("SELECT t.name, ") +
                         (fast ? "warden.count_rows(t.name::regclass)" : "NULL::bigint") + " FROM (" +
                         kTablesQuery + ") t(name)");
    std::map<std::string, std::int64_t> counts;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        std::string name = PQgetvalue(res.get(), i, 0);
        if (!PQgetisnull(res.get(), i, 1)) {
            counts[name] = std::stoll(PQgetvalue(res.get(), i, 1));
            continue;
        }
        auto one = conn.exec("SELECT count(*) FROM " + name);
        counts[name] = std::stoll(PQgetvalue(one.get(), 0, 0));
    }
    return counts;
}

int default_jobs(int jobs)
{
    return jobs > 0 ? jobs : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

std::string single_value(Connection& conn, const std::string& sql)
{
    auto res = conn.exec(sql);
    return PQntuples(res.get()) > 0 && !PQgetisnull(res.get(), 0, 0) ? PQgetvalue(res.get(), 0, 0) : "";
}

}  // namespace

BackupInfo create_logical_backup(const LogicalBackupOptions& opts)
{
    install_interrupt_handlers();
    if (opts.compression == Compression::zstd)
        throw Error(sqlstate::invalid_parameter_value, "logical backups support --compress gzip or none", {},
                    "pg_dump 15 compresses the directory format with gzip only.");
    double t0 = monotonic_seconds();
    BackupInfo info;
    info.kind = "logical";
    info.database = opts.database;
    info.label = opts.label;
    info.compression = compression_name(opts.compression);
    info.compression_level = opts.compression == Compression::none ? 0 : opts.level;
    info.warden_version = kVersion;
    info.started_at = now_iso8601();

    std::string own_conninfo = conninfo_with(opts.conninfo, {{"dbname", opts.database}});
    Connection conn(own_conninfo, false, "warden backup");
    // pg_dump must reach the server this connection exported the snapshot on.
    ClientConnection client(conn.get());
    info.conninfo = describe_connection(conn.get());
    info.server_version_num = PQserverVersion(conn.get());
    info.server_version = PQparameterStatus(conn.get(), "server_version");
    info.ledger_version = ledger_version(conn);

    // The snapshot pg_dump will use is this transaction's: the row counts below are
    // exactly what the dump contains.
    conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    std::string snapshot = single_value(conn, "SELECT pg_catalog.pg_export_snapshot()");
    info.start_lsn = info.stop_lsn = single_value(
        conn, "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() "
              "ELSE pg_catalog.pg_current_wal_lsn() END");
    try {
        auto sys = conn.exec("SELECT system_identifier::text, "
                             "(SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()) "
                             "FROM pg_catalog.pg_control_system()");
        info.system_identifier = PQgetvalue(sys.get(), 0, 0);
        info.timeline = static_cast<std::uint32_t>(std::stoul(PQgetvalue(sys.get(), 0, 1)));
    } catch (const Error&) {
        throw Error("42501", "cannot read the system identifier of the server", {},
                    "The backup role needs EXECUTE on pg_control_system() (granted to pg_monitor members "
                    "by superusers).");
    }
    info.original_bytes = std::stoull(single_value(conn, "SELECT pg_catalog.pg_database_size(current_database())"));

    if (opts.encrypt)
        start_encrypting(info);
    BackupFolder folder = start_backup_folder(opts.dir);
    info.id = folder.id;
    if (info.label.empty())
        info.label = "warden " + info.id;
    try {
        if (!opts.encrypt)
            reserve_private_dir(folder, "dump");
        reserve_private_file(folder, "globals.sql");
        const auto& env = client.env();
        const auto& fds = client.inherit_fds();
        std::vector<std::string> dump = {"pg_dump", "-Fd", "-j", std::to_string(default_jobs(opts.jobs)),
                                         "--snapshot", snapshot, "-Z", std::to_string(info.compression_level),
                                         "-f", folder.partial + "/dump", "-d", client.conninfo()};
        std::vector<std::string> globals = {"pg_dumpall", "--globals-only", "-f", folder.partial + "/globals.sql",
                                            "-d", client.conninfo()};
        // pg_dump reads through its own connections. Meanwhile the roles and tablespaces
        // are saved (a few catalog reads, outside any snapshot anyway), and this connection
        // counts rows in the same snapshot: pg_dump keeps both cores busy, so everything
        // else pg_warden does runs beside it rather than after it.
        // Encrypted: one custom-format stream (pg_dump -Fd -j writes files of its own);
        // --no-sync, since a pipe cannot be fsynced (the sealed file is).
        std::vector<std::string> sealed_dump = {"pg_dump", "-Fc", "--no-sync", "--snapshot", snapshot, "-Z",
                                                std::to_string(info.compression_level), "-d", client.conninfo()};
        {
            std::unique_ptr<RunningProcess> pg_dump;
            std::unique_ptr<SealedDumpWriter> sealed;
            if (opts.encrypt)
                sealed = std::make_unique<SealedDumpWriter>(sealed_dump, env, fds,
                                                            folder.partial + "/" + kSealedDumpFile);
            else
                pg_dump = std::make_unique<RunningProcess>(dump, env, "", fds);
            // Without superuser rights pg_authid is closed: save the roles without passwords.
            if (run_process(globals, env, "", fds).exit_code != 0) {
                globals.push_back("--no-role-passwords");
                run_checked(globals, env, "", fds);
            }
            // Parallel workers would only compete with pg_dump for the same two cores.
            conn.exec("SET LOCAL max_parallel_workers_per_gather = 0");
            info.row_counts = count_rows(conn);
            if (sealed)
                sealed->wait_checked();
            else
                pg_dump->wait_checked();
        }
        throw_if_interrupted();
        conn.exec("COMMIT");

        std::vector<std::string> names;
        for (const auto& e : fs::recursive_directory_iterator(folder.partial))
            if (e.is_regular_file() && e.path().filename() != "owner.pid")
                names.push_back(fs::relative(e.path(), folder.partial).string());
        std::sort(names.begin(), names.end());
        for (const auto& name : names) {
            std::string path = folder.partial + "/" + name;
            fsync_file(path);
            std::uint64_t size = fs::file_size(path);
            info.files.push_back({name, size, file_sha256(path)});
            info.stored_bytes += size;
        }
        if (!opts.encrypt)
            fsync_dir(folder.partial + "/dump");
    } catch (...) {
        discard_backup_folder(folder);
        throw;
    }
    info.finished_at = now_iso8601();
    info.backup_seconds = seconds_since(t0);
    publish_backup_folder(folder, info);
    return info;
}

void verify_logical_backup(const std::string& backup_path, const BackupInfo& info, bool)
{
    check_stored_files(backup_path, info);
    // pg_restore --list reads only the table of contents; writing the whole script to
    // /dev/null decompresses and parses every data file.
    try {
        if (!info.encryption_salt.empty())
            run_on_sealed_dump({"pg_restore", "-f", "/dev/null"}, backup_path);
        else
            run_checked({"pg_restore", "-f", "/dev/null", backup_path + "/dump"});
    } catch (const Error& e) {
        throw Error("XX001", std::string("dump: ") + e.what(), e.detail());
    }
}

LogicalRestoreReport restore_logical_backup(const std::string& backup_path, const BackupInfo& info,
                                            const LogicalRestoreOptions& opts)
{
    if (opts.database.empty())
        throw Error(sqlstate::invalid_parameter_value, "--database is required for a logical backup");
    check_stored_files(backup_path, info);
    std::string own = conninfo_with(opts.conninfo, {{"dbname", opts.database}});
    std::unique_ptr<Connection> conn;
    try {
        conn = std::make_unique<Connection>(own, false, "warden restore");
    } catch (const Error& e) {
        throw Error(e.sqlstate(), std::string(e.what()), {},
                    "The target database must exist: createdb " + opts.database);
    }
    // Only whether it has tables matters here, not how many rows they hold.
    auto existing = conn->exec(kTablesQuery);
    if (PQntuples(existing.get()) > 0 && !opts.clean)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "database " + opts.database + " is not empty (" + std::to_string(PQntuples(existing.get())) +
                        " tables)",
                    {}, "Restore into an empty database, or pass --clean to drop its objects first.");

    ClientConnection client(conn->get());
    bool sealed = !info.encryption_salt.empty();
    // A sealed dump reaches pg_restore through a pipe, which it reads in one pass.
    std::vector<std::string> argv = {"pg_restore", "-j", std::to_string(sealed ? 1 : default_jobs(opts.jobs)),
                                     "--exit-on-error", "-d", client.conninfo()};
    if (opts.clean) {
        argv.push_back("--clean");
        argv.push_back("--if-exists");
    }
    if (sealed) {
        run_on_sealed_dump(argv, backup_path, client.env(), "", client.inherit_fds());
    } else {
        argv.push_back(backup_path + "/dump");
        run_checked(argv, client.env(), "", client.inherit_fds());
    }

    LogicalRestoreReport report;
    auto restored = count_rows(*conn);
    for (const auto& [table, count] : info.row_counts) {
        auto it = restored.find(table);
        if (it == restored.end())
            throw Error("XX001", "table " + table + " is missing after the restore");
        if (it->second != count)
            throw Error("XX001", "table " + table + " has " + std::to_string(it->second) + " rows after the restore, " +
                                     std::to_string(count) + " when backed up");
        ++report.tables_checked;
    }
    return report;
}

}  // namespace warden
