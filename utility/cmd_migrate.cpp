// warden migrate status|up|plan|down|verify|create|baseline|repair|history: the client side of
// the migration ledger. Every rule (checksums, order, locking, what counts as applied)
// lives in the extension; this reads the folder, compares it in one query and sends the
// pending migrations, pipelined, each in its own transaction with its ledger row.
// up and down are in migrate_up.cpp, the shared parts in migrate_common.cpp.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <ctime>
#include <map>

#include "error.hpp"
#include "fs/safe_file.hpp"
#include "json_text.hpp"
#include "migrate_common.hpp"
#include "migrate_plan.hpp"

namespace warden::cli {

namespace {

using nlohmann::json;
using namespace migrate;

// ---- status and verify ------------------------------------------------------------------

int run_status(bool verify_only)
{
    const MigrateOptions& o = options();
    // The server starts a backend while the folder is read (10,000 files: tens of ms each).
    auto connecting = std::async(std::launch::async, connect_ledger);
    auto files = load_files();
    Connection conn = connecting.get();
    auto rows = verify(conn, files);
    auto summary = conn.exec(
        "SELECT coalesce(warden.current_version(), ''), count(d.*), "
        "  coalesce(pg_catalog.string_agg(d.command || ' ' || coalesce(d.objects #>> '{0,identity}', ''), "
        "  '; ' ORDER BY d.occurred_at DESC), '') "
        "FROM warden.schema_drift d");
    std::string current = shown_of(PQgetvalue(summary.get(), 0, 0), files);
    int drift = std::atoi(PQgetvalue(summary.get(), 0, 1));
    std::string drift_list = PQgetvalue(summary.get(), 0, 2);

    std::map<std::string, int> counts;
    for (const auto& r : rows)
        counts[r.state]++;
    auto repeatables_state = repeatable_states(conn);
    bool problems = counts["modified"] || counts["missing_file"] || counts["failed"] ||
                    counts["interrupted"] || counts["running"];

    if (o.json) {
        json j = {{"current_version", current}, {"drift_events", drift},
                  {"format", layout_name(o.layout)},
                  {"counts", counts}, {"migrations", json::array()}};
        for (const auto& r : rows)
            j["migrations"].push_back({{"version", r.shown}, {"ledger_version", r.version},
                                       {"name", r.name}, {"state", r.state},
                                       {"file_checksum", r.file_checksum},
                                       {"applied_checksum", r.applied_checksum}});
        // The plan of the pending migrations; a migration that would fail is reported, not fatal.
        if (!verify_only && counts["pending"] && !problems) {
            try {
                j["plan"] = plan_json(plan_pending(conn, pending_files(files, rows), true));
            } catch (const Error& e) {
                j["plan_error"] = e.what();
            }
        }
        for (const auto& [r, state] : repeatables_state)
            j["repeatables"].push_back({{"name", r->name}, {"file", r->file}, {"state", state}});
        std::printf("%s\n", json_text(j).c_str());
        return verify_only && problems ? 1 : 0;
    }
    if (!verify_only) {
        std::printf("%-16s %-40s %s\n", "version", "name", "state");
        for (const auto& r : rows)
            std::printf("%-16s %-40s %s\n", r.shown.c_str(), r.name.c_str(), r.state.c_str());
        for (const auto& [r, state] : repeatables_state)
            std::printf("%-16s %-40s %s\n", "R", r->name.c_str(), state.c_str());
        std::printf("current version %s; %d applied, %d pending\n",
                    current.empty() ? "(none)" : current.c_str(), counts["ok"], counts["pending"]);
    } else {
        for (const auto& r : rows) {
            if (r.state == "ok" || r.state == "pending")
                continue;
            std::printf("%s %s", r.state.c_str(), label(r.shown, r.name).c_str());
            if (r.state == "modified")
                std::printf(" (applied %s, file %s)", r.applied_checksum.c_str(),
                            r.file_checksum.c_str());
            std::printf("\n");
        }
        std::printf("%s: %d ok, %d pending, %d modified, %d missing file, %d failed\n",
                    problems ? "verify failed" : "verify ok", counts["ok"], counts["pending"],
                    counts["modified"], counts["missing_file"],
                    counts["failed"] + counts["interrupted"] + counts["running"]);
    }
    if (drift > 0)
        std::printf("drift: %d DDL command%s ran outside migrations since the last one (%s)\n",
                    drift, drift == 1 ? "" : "s", drift_list.c_str());
    if (verify_only && problems) {
        std::fflush(stdout);
        std::fprintf(stderr, "warden: the ledger and %s disagree\n", o.dir.c_str());
        return 1;
    }
    return 0;
}

// ---- create, baseline, repair, history ----------------------------------------------------

bool valid_name(const std::string& name)
{
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// The commented template of a new migration: what runs how, and the directives.
std::string template_text(const std::string& version, const std::string& name, bool up)
{
    std::string out = fmt::format("-- Migration {} {}: {}\n", version, name,
                                  up ? "up" : "down (undoes the up script)");
    out += up ? "--\n"
                "-- The statements below run in one transaction with the ledger row: all or nothing.\n"
                "-- Statements that can't run in a transaction (CREATE INDEX CONCURRENTLY) need the\n"
                "-- no-transaction directive as a comment line at the top: \"-- warden\" + \":no-transaction\".\n"
                "-- A file with no statement is a no-op migration, recorded like any other.\n"
              : "--\n"
                "-- Stored with the migration when it is applied; warden migrate down runs the stored\n"
                "-- copy. Leave it without statements if the migration can't be undone by a script.\n";
    return out;
}

int run_create()
{
    const MigrateOptions& o = options();
    if (!valid_name(o.name))
        usage_error("the name may hold only letters, digits, _ and -");
    // Migration files are the project's source, shared like any other: 0755/0644.
    fs::Dir dir = fs::make_dirs(o.dir, 0755);
    auto files = load_files();
    Layout layout = o.layout;
    std::string version;
    if (o.sequential) {
        std::string last = files.empty() ? "0" : files.back().version;
        if (layout == Layout::flyway && !files.empty()) {
            const std::string& v = shown_version(files.back());
            last = v.substr(0, v.find('.'));
        }
        unsigned long long next = std::stoull(last) + 1;
        std::size_t width = std::max<std::size_t>(layout == Layout::flyway ? 1 : 3,
                                                  files.empty() ? 3 : last.size());
        version = fmt::format("{:0{}}", next, width);
    } else {
        std::time_t now = std::time(nullptr);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", std::gmtime(&now));
        version = buf;
    }
    std::string key = layout == Layout::flyway ? flyway_ledger_version(version) : version;
    for (const auto& f : files)
        if (compare_versions(f.version, key) == 0)
            throw Error(sqlstate::invalid_parameter_value,
                        fmt::format("version {} already exists in {}", version, o.dir));
    // The new files follow the folder's layout.
    std::vector<std::pair<std::string, std::string>> new_files;
    switch (layout) {
    case Layout::flyway:
        new_files = {{fmt::format("V{}__{}.sql", version, o.name), template_text(version, o.name, true)},
                     {fmt::format("U{}__{}.sql", version, o.name), template_text(version, o.name, false)}};
        break;
    case Layout::dbmate:
        new_files = {{fmt::format("{}_{}.sql", version, o.name),
                      "-- migrate:up\n" + template_text(version, o.name, true) + "\n-- migrate:down\n" +
                          template_text(version, o.name, false)}};
        break;
    default:
        new_files = {{fmt::format("{}_{}.up.sql", version, o.name), template_text(version, o.name, true)},
                     {fmt::format("{}_{}.down.sql", version, o.name), template_text(version, o.name, false)}};
        break;
    }
    // O_EXCL: an existing file, or a symlink planted under the new name, is never written.
    // All files or none.
    std::vector<std::string> created;
    try {
        for (const auto& [name, body] : new_files) {
            fs::Fd fd = fs::create_exclusive(dir, name, 0644);
            created.push_back(name);
            if (::write(fd.get(), body.data(), body.size()) != static_cast<ssize_t>(body.size()))
                throw Error("58030", "cannot write " + dir.path_of(name));
            fd.close(dir.path_of(name));
        }
    } catch (...) {
        for (const auto& name : created)
            ::unlinkat(dir.fd(), name.c_str(), 0);
        throw;
    }
    if (o.json) {
        json j = {{"version", version}, {"format", layout_name(layout)}, {"up", dir.path_of(new_files[0].first)}};
        if (new_files.size() > 1)
            j["down"] = dir.path_of(new_files[1].first);
        std::printf("%s\n", json_text(j).c_str());
    } else {
        for (const auto& f : new_files)
            std::printf("created %s\n", dir.path_of(f.first).c_str());
    }
    return 0;
}

int run_baseline()
{
    const MigrateOptions& o = options();
    note_folder_layout();
    std::string version = ledger_target(o.version);
    Connection conn = connect_ledger();
    conn.exec_params("SELECT warden.baseline_migrations($1, $2)",
                     {version, o.name.empty() ? "baseline" : o.name});
    if (o.json)
        std::printf("%s\n", json_text(json({{"baseline", o.version}})).c_str());
    else
        std::printf("baseline at version %s: earlier versions count as applied\n", o.version.c_str());
    return 0;
}

int run_repair()
{
    const MigrateOptions& o = options();
    note_folder_layout();
    std::string version = ledger_target(o.version);
    if (o.resolution != "retry" && o.resolution != "applied")
        usage_error("--resolution is retry or applied");
    Connection conn = connect_ledger();
    auto res = conn.exec_params("SELECT warden.repair_migration($1, $2), "
                                "(SELECT coalesce(string_agg(i, ', '), '') FROM warden.invalid_indexes() i)",
                                {version, o.resolution});
    std::string state = PQgetvalue(res.get(), 0, 0);
    std::string invalid = PQgetvalue(res.get(), 0, 1);
    if (o.json) {
        std::printf("%s\n", json_text(json({{"version", o.version}, {"state", state},
                                            {"invalid_indexes", invalid}})).c_str());
        return 0;
    }
    std::printf("migration %s is now %s\n", o.version.c_str(), state.c_str());
    if (!invalid.empty())
        std::printf("invalid indexes remain: %s\n", invalid.c_str());
    return 0;
}

int run_history()
{
    const MigrateOptions& o = options();
    Connection conn = connect_ledger();
    auto res = conn.exec_params(
        "SELECT * FROM (SELECT id, to_char(occurred_at, 'YYYY-MM-DD HH24:MI:SS'), event, "
        "  coalesce(version, ''), coalesce(name, ''), "
        "  coalesce(round(execution_ms::numeric, 1)::text, ''), session_user_name, "
        "  coalesce(application_name, ''), coalesce(detail::text, '') "
        "  FROM warden.migration_events ORDER BY id DESC LIMIT $1) e ORDER BY id",
        {std::to_string(o.limit)});
    json j = json::array();
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        auto v = [&](int col) { return std::string(PQgetvalue(res.get(), i, col)); };
        if (o.json) {
            j.push_back({{"at", v(1)}, {"event", v(2)}, {"version", v(3)}, {"name", v(4)},
                         {"execution_ms", v(5)}, {"user", v(6)}, {"application", v(7)},
                         {"detail", v(8).empty() ? json() : json::parse(v(8))}});
        } else {
            std::printf("%s  %-11s %-16s %-28s %8s  %s (%s)%s%s\n", v(1).c_str(), v(2).c_str(),
                        v(3).c_str(), v(4).c_str(), v(5).empty() ? "" : (v(5) + " ms").c_str(),
                        v(6).c_str(), v(7).c_str(), v(8).empty() ? "" : "  ", v(8).c_str());
        }
    }
    if (o.json)
        std::printf("%s\n", json_text(j).c_str());
    return 0;
}

void add_common(CLI::App* cmd)
{
    MigrateOptions& o = options();
    add_connection_option(cmd, o.conn);
    {
        cmd->add_option("--dir", o.dir, "folder of migration files (default: migrations)");
        cmd->add_option("--format", o.format,
                        "layout of the folder: auto (the default: detected), golang-migrate, "
                        "flyway, dbmate or suffixed");
        cmd->add_flag("--follow-symlinks", o.follow_symlinks,
                      "read .sql files that are symbolic links to files outside --dir (refused by default)");
    }
    cmd->add_option("--lock-timeout", o.lock_timeout,
                    "how long to wait for another migration (e.g. 500ms, 10s; default: "
                    "warden.migration_lock_timeout)");
    cmd->add_flag("--json", o.json, "machine-readable output on stdout");
    cmd->add_flag("-q,--quiet", o.quiet, "no progress or summary lines");
}

void add_migrate_commands(CLI::App& app)
{
    MigrateOptions& o = options();
    CLI::App* migrate = app.add_subcommand("migrate", "schema migrations with the pg_warden ledger");
    migrate->require_subcommand(1);

    CLI::App* status = migrate->add_subcommand("status", "each migration's state, and schema drift");
    add_common(status);
    on_run(status, [] { return run_status(false); });

    CLI::App* up = migrate->add_subcommand("up", "apply pending migrations, each in its own transaction");
    add_common(up);
    up->add_option("--target", o.target, "apply up to this version only");
    up->add_flag("--dry-run", o.dry_run, "run the pending migrations in a transaction that is rolled back");
    up->add_flag("--allow-out-of-order", o.allow_out_of_order,
                 "apply pending versions older than the latest applied one");
    up->add_flag("--backup", o.backup,
                 "take a backup first (when anything is pending); refuse to migrate if it fails");
    up->add_option("--backup-dir", o.backup_dir,
                   "backup folder for --backup (default: $WARDEN_BACKUP_DIR)");
    up->add_option("--backup-kind", o.backup_kind,
                   "logical (this database, the default) or physical (the whole cluster)")
        ->check(CLI::IsMember({"logical", "physical"}));
    on_run(up, run_up);

    CLI::App* plan = migrate->add_subcommand(
        "plan", "run each pending migration in a transaction that is rolled back and report "
                "its locks, rewrites, scans and risks; exit 1 if the policy refuses one");
    add_common(plan);
    plan->add_option("--target", o.target, "plan up to this version only");
    plan->add_flag("--allow-out-of-order", o.allow_out_of_order,
                   "plan pending versions older than the latest applied one");
    on_run(plan, run_plan);

    CLI::App* down = migrate->add_subcommand("down", "roll back the latest migration, or down to --target");
    add_common(down);
    down->add_option("--target", o.target, "roll back every migration above this version");
    down->add_flag("--dry-run", o.dry_run, "roll back in a transaction that is rolled back");
    on_run(down, run_down);

    CLI::App* verify_cmd = migrate->add_subcommand(
        "verify", "compare the files with the ledger; exit 1 if modified, missing or failed");
    add_common(verify_cmd);
    on_run(verify_cmd, [] { return run_status(true); });

    CLI::App* create = migrate->add_subcommand("create", "create NAME's up and down files");
    create->add_option("name", o.name, "migration name (letters, digits, _ and -)")->required();
    create->add_flag("--sequential", o.sequential, "next number (001, 002, ...) instead of a UTC timestamp");
    add_common(create);
    on_run(create, run_create);

    CLI::App* baseline = migrate->add_subcommand(
        "baseline", "mark every version up to VERSION as applied without running it");
    baseline->add_option("version", o.version, "the version the database already matches")->required();
    baseline->add_option("--name", o.name, "name recorded for the baseline");
    add_common(baseline);
    on_run(baseline, run_baseline);

    CLI::App* repair = migrate->add_subcommand(
        "repair", "resolve a failed or interrupted non-transactional migration");
    repair->add_option("version", o.version, "the failed migration's version")->required();
    repair->add_option("--resolution", o.resolution,
                       "retry (run it again on the next up) or applied (it was completed by hand)");
    add_common(repair);
    on_run(repair, run_repair);

    CLI::App* adopt = migrate->add_subcommand(
        "adopt", "record what another migration tool applied (read from its history table, "
                 "left untouched) as applied, without running it");
    adopt->add_option("--from", o.from, "the tool: flyway, golang-migrate, dbmate or node-pg-migrate")
        ->required()
        ->check(CLI::IsMember({"flyway", "golang-migrate", "dbmate", "node-pg-migrate"}));
    adopt->add_option("--table", o.from_table,
                      "its history table (default: flyway_schema_history, schema_migrations or "
                      "pgmigrations)");
    add_common(adopt);
    on_run(adopt, run_adopt);

    CLI::App* history = migrate->add_subcommand("history", "the ledger's event log, oldest first");
    history->add_option("--limit", o.limit, "number of latest events (default 50)");
    add_common(history);
    on_run(history, run_history);
}

}  // namespace

static const bool registered = add_command_group(20, add_migrate_commands);

}  // namespace warden::cli
