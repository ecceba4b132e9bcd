// warden migrate status|up|down|verify|create|baseline|repair|history: the client side of
// the migration ledger. Every rule (checksums, order, locking, what counts as applied)
// lives in the extension; this reads the folder, compares it in one query and sends the
// pending migrations, pipelined, each in its own transaction with its ledger row.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>

#include "checksum.hpp"
#include "commands.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "migration_files.hpp"

namespace warden::cli {

namespace {

using nlohmann::json;

struct MigrateOptions {
    ConnectionOptions conn;
    std::string dir = "migrations";
    std::string target;
    std::string lock_timeout;
    bool dry_run = false;
    bool allow_out_of_order = false;
    bool json = false;
    bool quiet = false;
    // create
    std::string name;
    bool sequential = false;
    // baseline, repair
    std::string version;
    std::string resolution = "retry";
    // history
    int limit = 50;
};

MigrateOptions& options()
{
    static MigrateOptions opts;
    return opts;
}

bool progress_enabled() { return !options().quiet && !options().json && isatty(STDERR_FILENO); }

void progress(const std::string& line)
{
    if (progress_enabled())
        std::fprintf(stderr, "%s\n", line.c_str());
}

// Versions are keyed without leading zeros, as the ledger compares them.
std::string version_key(const std::string& v)
{
    std::size_t i = v.find_first_not_of('0');
    return i == std::string::npos ? "0" : v.substr(i);
}

std::string label(const std::string& version, const std::string& name)
{
    return version + "_" + name;
}

Connection connect_ledger()
{
    const MigrateOptions& o = options();
    Connection conn(o.conn.conninfo, false, "warden migrate");
    auto res = conn.exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_warden'");
    if (PQntuples(res.get()) == 0)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    fmt::format("pg_warden is not installed in database \"{}\"", PQdb(conn.get())),
                    "", "Run CREATE EXTENSION pg_warden as a superuser first.");
    if (!o.lock_timeout.empty())
        conn.exec_params("SELECT pg_catalog.set_config('warden.migration_lock_timeout', $1, false)",
                         {o.lock_timeout});
    return conn;
}

struct VerifyRow {
    std::string version, name, state, file_checksum, applied_checksum;
};

// The verify_migrations argument, written directly: versions are digits, names letters,
// digits, _ and -, checksums hex, so nothing needs escaping (and 10,000 entries stay cheap).
std::string files_json(const std::vector<MigrationFile>& files)
{
    std::string out = "[";
    out.reserve(files.size() * 128 + 2);
    for (const auto& f : files) {
        if (out.size() > 1)
            out += ',';
        out += "{\"version\":\"" + f.version + "\",\"name\":\"" + f.name +
               "\",\"checksum\":\"" + f.checksum + "\"}";
    }
    out += ']';
    return out;
}

// The folder against the ledger, in one query. A 'failed' row is looked at again (rare)
// to tell an interrupted non-transactional runner from a failed one.
std::vector<VerifyRow> verify(Connection& conn, const std::vector<MigrationFile>& files)
{
    auto res = conn.exec_params(
        "SELECT version, name, state, coalesce(file_checksum, ''), coalesce(applied_checksum, '') "
        "FROM warden.verify_migrations($1::jsonb)",
        {files_json(files)});
    std::vector<VerifyRow> rows;
    rows.reserve(PQntuples(res.get()));
    bool any_failed = false;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        rows.push_back({PQgetvalue(res.get(), i, 0), PQgetvalue(res.get(), i, 1),
                        PQgetvalue(res.get(), i, 2), PQgetvalue(res.get(), i, 3),
                        PQgetvalue(res.get(), i, 4)});
        any_failed = any_failed || rows.back().state == "failed";
    }
    if (any_failed) {
        auto states = conn.exec("SELECT version, state FROM warden.migration_status "
                                "WHERE state IN ('failed', 'running', 'interrupted')");
        std::map<std::string, std::string> by_key;
        for (int i = 0; i < PQntuples(states.get()); ++i)
            by_key[version_key(PQgetvalue(states.get(), i, 0))] = PQgetvalue(states.get(), i, 1);
        for (auto& r : rows)
            if (r.state == "failed" && by_key.count(version_key(r.version)))
                r.state = by_key[version_key(r.version)];
    }
    return rows;
}

// Refuses to go on when the ledger and the folder disagree about the past.
void check_history(const std::vector<VerifyRow>& rows)
{
    for (const auto& r : rows) {
        if (r.state == "failed" || r.state == "interrupted" || r.state == "running")
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        fmt::format("migration {} is {}; repair it first (warden migrate repair {})",
                                    label(r.version, r.name), r.state, r.version));
        if (r.state == "modified")
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        fmt::format("migration {} was modified after it was applied (applied "
                                    "checksum {}, file checksum {})",
                                    label(r.version, r.name), r.applied_checksum, r.file_checksum));
    }
    for (const auto& r : rows)
        if (r.state == "missing_file" && !options().quiet)
            std::fprintf(stderr, "warden: warning: applied migration %s has no file in %s\n",
                         label(r.version, r.name).c_str(), options().dir.c_str());
}

std::vector<MigrationFile> load_files()
{
    struct stat st;
    if (stat(options().dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error(sqlstate::invalid_parameter_value,
                    fmt::format("cannot read migration folder \"{}\"", options().dir), "",
                    "Pass --dir DIR.");
    return load_migration_dir(options().dir);
}

[[noreturn]] void usage_error(const std::string& message)
{
    std::fprintf(stderr, "warden: %s\n", message.c_str());
    throw ExitCode{2};
}

// ---- up ---------------------------------------------------------------------------------

struct Outcome {
    std::string version, name, result;  // applied | skipped | would_apply | not_tried
};

const char* kApply = "SELECT warden.apply_migration($1, $2, $3, $4, $5)";

std::vector<const char*> apply_params(const MigrationFile& m, bool allow_ooo)
{
    return {m.version.c_str(), m.name.c_str(), m.up_sql.c_str(),
            m.has_down ? m.down_sql.c_str() : nullptr, allow_ooo ? "true" : "false"};
}

// Records a transactional failure in the event log (its own transaction) and throws.
[[noreturn]] void fail_transactional(Connection& conn, const MigrationFile& m, const Error& e)
{
    try {
        conn.exec_params("SELECT warden.record_migration_failure($1, $2, $3)",
                         {m.version, m.name, e.what()});
    } catch (const Error&) {
        // The original error is the one to report.
    }
    throw e;
}

// Applies transactional migrations in one round trip: BEGIN; apply; COMMIT for each, all
// before a single Sync, so an error skips every later one and nothing runs past it.
// Every commit but the batch's last skips the WAL flush wait (synchronous_commit off for
// that transaction only): each migration still commits atomically with its ledger row,
// and the last, ordinary commit makes all of them durable before the batch is reported.
// A server crash mid-batch can lose some of them, together with their rows; the next
// `up` applies them again.
void apply_batch(Connection& conn, const std::vector<const MigrationFile*>& batch,
                 std::vector<Outcome>& out)
{
    PGconn* c = conn.get();
    if (PQenterPipelineMode(c) != 1)
        throw Error("08006", "could not enter pipeline mode");
    for (const MigrationFile* m : batch) {
        auto params = apply_params(*m, options().allow_out_of_order);
        if (!PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0) ||
            (m != batch.back() &&
             !PQsendQueryParams(c, "SET LOCAL synchronous_commit = off", 0, nullptr, nullptr,
                                nullptr, nullptr, 0)) ||
            !PQsendQueryParams(c, kApply, 5, nullptr, params.data(), nullptr, nullptr, 0) ||
            !PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0))
            throw Error("08006", PQerrorMessage(c));
    }
    if (!PQpipelineSync(c))
        throw Error("08006", PQerrorMessage(c));

    std::optional<Error> failure;
    const MigrationFile* failed = nullptr;
    for (const MigrationFile* m : batch) {
        for (int step = 0, steps = m == batch.back() ? 3 : 4; step < steps; ++step) {
            PGresult* raw = PQgetResult(c);
            ResultPtr res(raw);
            while (PGresult* extra = PQgetResult(c))
                PQclear(extra);
            auto status = PQresultStatus(res.get());
            if (status == PGRES_PIPELINE_ABORTED || status == PGRES_COMMAND_OK)
                continue;
            if (status == PGRES_TUPLES_OK) {
                out.push_back({m->version, m->name, PQgetvalue(res.get(), 0, 0)});
                progress(fmt::format("{} {}", out.back().result, label(m->version, m->name)));
                continue;
            }
            if (!failure) {
                try {
                    throw_result_error(res.get(), c);
                } catch (const Error& e) {
                    failure = e;
                    failed = m;
                }
            }
        }
    }
    ResultPtr sync(PQgetResult(c));
    if (PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
        throw Error("08006", "unexpected reply at the end of a pipeline");
    PQexitPipelineMode(c);
    if (failure) {
        if (PQtransactionStatus(c) != PQTRANS_IDLE)
            conn.exec("ROLLBACK");
        fail_transactional(conn, *failed, *failure);
    }
}

// Lines of a statement up to a 1-based character position (UTF-8).
int lines_before(const std::string& text, int char_pos)
{
    int line = 0, chars = 0;
    for (std::size_t i = 0; i < text.size() && chars < char_pos - 1; ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
            ++chars;
        if (text[i] == '\n')
            ++line;
    }
    return line;
}

// The non-transactional protocol: a committed 'running' row, the statements one by one at
// top level (as psql would run them), then applied or failed.
void apply_no_transaction(Connection& conn, const MigrationFile& m, std::vector<Outcome>& out)
{
    auto split = conn.exec_params("SELECT line, statement FROM warden.split_script($1)", {m.up_sql});
    auto params = apply_params(m, options().allow_out_of_order);
    ResultPtr begun(PQexecParams(conn.get(),
                                 "SELECT warden.begin_migration($1, $2, $3, $4, $5)", 5, nullptr,
                                 params.data(), nullptr, nullptr, 0));
    if (PQresultStatus(begun.get()) != PGRES_TUPLES_OK)
        throw_result_error(begun.get(), conn.get());
    if (std::string(PQgetvalue(begun.get(), 0, 0)) == "skipped") {
        out.push_back({m.version, m.name, "skipped"});
        return;
    }
    progress(fmt::format("running {} outside a transaction", label(m.version, m.name)));
    for (int i = 0; i < PQntuples(split.get()); ++i) {
        int line = std::atoi(PQgetvalue(split.get(), i, 0));
        std::string statement = PQgetvalue(split.get(), i, 1);
        ResultPtr res(PQexec(conn.get(), statement.c_str()));
        auto status = PQresultStatus(res.get());
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
            continue;
        const char* pos = PQresultErrorField(res.get(), PG_DIAG_STATEMENT_POSITION);
        const char* msg = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY);
        std::string message =
            fmt::format("migration {} ({}) failed at line {}: {}", m.version, m.name,
                        line + (pos ? lines_before(statement, std::atoi(pos)) : 0),
                        msg ? msg : PQerrorMessage(conn.get()));
        conn.exec_params("SELECT warden.fail_migration($1, $2)", {m.version, message});
        throw Error(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE)
                        ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE)
                        : "XX000",
                    message, "",
                    fmt::format("The migration is recorded as failed; fix the database, then "
                                "warden migrate repair {}.",
                                m.version));
    }
    conn.exec_params("SELECT warden.finish_migration($1)", {m.version});
    out.push_back({m.version, m.name, "applied"});
    progress(fmt::format("applied {}", label(m.version, m.name)));
}

// --dry-run: every pending transactional migration in one transaction that is rolled back.
void dry_run(Connection& conn, const std::vector<const MigrationFile*>& pending,
             std::vector<Outcome>& out)
{
    conn.exec("BEGIN");
    std::size_t i = 0;
    try {
        for (; i < pending.size() && pending[i]->transactional; ++i) {
            auto params = apply_params(*pending[i], options().allow_out_of_order);
            ResultPtr res(PQexecParams(conn.get(), kApply, 5, nullptr, params.data(), nullptr,
                                       nullptr, 0));
            if (PQresultStatus(res.get()) != PGRES_TUPLES_OK)
                throw_result_error(res.get(), conn.get());
            std::string r = PQgetvalue(res.get(), 0, 0);
            out.push_back({pending[i]->version, pending[i]->name,
                           r == "applied" ? "would_apply" : r});
        }
    } catch (const Error&) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw;
    }
    conn.exec("ROLLBACK");
    // A non-transactional migration can't be tried and rolled back; later ones may need it.
    for (; i < pending.size(); ++i)
        out.push_back({pending[i]->version, pending[i]->name, "not_tried"});
}

int run_up()
{
    const MigrateOptions& o = options();
    if (!o.target.empty() && !is_version(o.target))
        usage_error("--target must be a version (digits)");
    auto files = load_files();
    Connection conn = connect_ledger();
    auto rows = verify(conn, files);
    check_history(rows);

    std::map<std::string, const MigrationFile*> by_key;
    for (const auto& f : files)
        by_key[version_key(f.version)] = &f;
    std::string latest_applied;
    for (const auto& r : rows)
        if ((r.state == "ok" || r.state == "missing_file") &&
            (latest_applied.empty() || compare_versions(r.version, latest_applied) > 0))
            latest_applied = r.version;

    std::vector<const MigrationFile*> pending;
    for (const auto& r : rows) {
        if (r.state != "pending")
            continue;
        if (!o.target.empty() && compare_versions(r.version, o.target) > 0)
            continue;
        const MigrationFile* m = by_key.at(version_key(r.version));
        if (!latest_applied.empty() && compare_versions(m->version, latest_applied) < 0 &&
            !o.allow_out_of_order)
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        fmt::format("migration {} is older than the latest applied migration {}",
                                    label(m->version, m->name), latest_applied),
                        "", "Pass --allow-out-of-order to apply it anyway.");
        pending.push_back(m);
    }

    std::vector<Outcome> out;
    if (o.dry_run) {
        dry_run(conn, pending, out);
    } else {
        // Each migration commits with its ledger row; batching only saves round trips.
        constexpr std::size_t kBatch = 100;
        std::vector<const MigrationFile*> batch;
        for (const MigrationFile* m : pending) {
            if (m->transactional) {
                batch.push_back(m);
                if (batch.size() == kBatch) {
                    apply_batch(conn, batch, out);
                    batch.clear();
                }
                continue;
            }
            if (!batch.empty())
                apply_batch(conn, batch, out);
            batch.clear();
            apply_no_transaction(conn, *m, out);
        }
        if (!batch.empty())
            apply_batch(conn, batch, out);
    }

    auto current = conn.exec("SELECT coalesce(warden.current_version(), '')");
    std::string version = PQgetvalue(current.get(), 0, 0);
    std::map<std::string, int> counts;
    for (const auto& r : out)
        counts[r.result]++;
    if (o.json) {
        json j = {{"dry_run", o.dry_run}, {"current_version", version}, {"migrations", json::array()}};
        for (const auto& r : out)
            j["migrations"].push_back({{"version", r.version}, {"name", r.name}, {"result", r.result}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    if (o.dry_run) {
        for (const auto& r : out)
            std::printf("%s %s\n", r.result == "not_tried" ? "not tried (runs outside a transaction):"
                                                            : (r.result + ":").c_str(),
                        label(r.version, r.name).c_str());
        std::printf("dry run: %d would apply, %d not tried; everything was rolled back\n",
                    counts["would_apply"], counts["not_tried"]);
    } else if (!o.quiet) {
        std::printf("%d applied, %d skipped; current version %s\n", counts["applied"],
                    counts["skipped"], version.empty() ? "(none)" : version.c_str());
    }
    return 0;
}

// ---- down -------------------------------------------------------------------------------

int run_down()
{
    const MigrateOptions& o = options();
    if (!o.target.empty() && !is_version(o.target))
        usage_error("--target must be a version (digits)");
    Connection conn = connect_ledger();
    if (o.dry_run)
        conn.exec("BEGIN");
    std::vector<std::string> versions;
    try {
        auto res = o.target.empty()
                       ? conn.exec("SELECT v FROM warden.rollback_migration() v")
                       : conn.exec_params("SELECT v FROM warden.rollback_migration($1) v", {o.target});
        for (int i = 0; i < PQntuples(res.get()); ++i)
            versions.push_back(PQgetvalue(res.get(), i, 0));
    } catch (const Error&) {
        if (o.dry_run)
            PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw;
    }
    if (o.dry_run)
        conn.exec("ROLLBACK");
    auto current = conn.exec("SELECT coalesce(warden.current_version(), '')");
    std::string version = PQgetvalue(current.get(), 0, 0);
    if (o.json) {
        std::printf("%s\n", json({{"dry_run", o.dry_run},
                                  {"rolled_back", versions},
                                  {"current_version", version}})
                                .dump(2)
                                .c_str());
        return 0;
    }
    for (const auto& v : versions)
        std::printf("%s %s\n", o.dry_run ? "would roll back" : "rolled back", v.c_str());
    if (!o.quiet)
        std::printf("%zu %s; current version %s\n", versions.size(),
                    o.dry_run ? "would be rolled back (dry run, nothing changed)" : "rolled back",
                    version.empty() ? "(none)" : version.c_str());
    return 0;
}

// ---- status and verify ------------------------------------------------------------------

int run_status(bool verify_only)
{
    const MigrateOptions& o = options();
    auto files = load_files();
    Connection conn = connect_ledger();
    auto rows = verify(conn, files);
    auto summary = conn.exec(
        "SELECT coalesce(warden.current_version(), ''), count(d.*), "
        "  coalesce(pg_catalog.string_agg(d.command || ' ' || coalesce(d.objects #>> '{0,identity}', ''), "
        "  '; ' ORDER BY d.occurred_at DESC), '') "
        "FROM warden.schema_drift d");
    std::string current = PQgetvalue(summary.get(), 0, 0);
    int drift = std::atoi(PQgetvalue(summary.get(), 0, 1));
    std::string drift_list = PQgetvalue(summary.get(), 0, 2);

    std::map<std::string, int> counts;
    for (const auto& r : rows)
        counts[r.state]++;
    bool problems = counts["modified"] || counts["missing_file"] || counts["failed"] ||
                    counts["interrupted"] || counts["running"];

    if (o.json) {
        json j = {{"current_version", current}, {"drift_events", drift},
                  {"counts", counts}, {"migrations", json::array()}};
        for (const auto& r : rows)
            j["migrations"].push_back({{"version", r.version}, {"name", r.name}, {"state", r.state},
                                       {"file_checksum", r.file_checksum},
                                       {"applied_checksum", r.applied_checksum}});
        std::printf("%s\n", j.dump(2).c_str());
        return verify_only && problems ? 1 : 0;
    }
    if (!verify_only) {
        std::printf("%-16s %-40s %s\n", "version", "name", "state");
        for (const auto& r : rows)
            std::printf("%-16s %-40s %s\n", r.version.c_str(), r.name.c_str(), r.state.c_str());
        std::printf("current version %s; %d applied, %d pending\n",
                    current.empty() ? "(none)" : current.c_str(), counts["ok"], counts["pending"]);
    } else {
        for (const auto& r : rows) {
            if (r.state == "ok" || r.state == "pending")
                continue;
            std::printf("%s %s", r.state.c_str(), label(r.version, r.name).c_str());
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

int run_create()
{
    const MigrateOptions& o = options();
    if (!valid_name(o.name))
        usage_error("the name may hold only letters, digits, _ and -");
    mkdir(o.dir.c_str(), 0755);
    auto files = load_files();
    std::string version;
    if (o.sequential) {
        std::string last = files.empty() ? "0" : files.back().version;
        unsigned long long next = std::stoull(last) + 1;
        std::size_t width = std::max<std::size_t>(3, files.empty() ? 3 : last.size());
        version = fmt::format("{:0{}}", next, width);
    } else {
        std::time_t now = std::time(nullptr);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", std::gmtime(&now));
        version = buf;
    }
    for (const auto& f : files)
        if (compare_versions(f.version, version) == 0)
            throw Error(sqlstate::invalid_parameter_value,
                        fmt::format("version {} already exists in {}", version, o.dir));
    std::string up = fmt::format("{}/{}_{}.up.sql", o.dir, version, o.name);
    std::string down = fmt::format("{}/{}_{}.down.sql", o.dir, version, o.name);
    for (const auto& [path, body] :
         {std::pair{up, std::string("-- Migration ") + version + " " + o.name + ": up\n"},
          std::pair{down, std::string("-- Migration ") + version + " " + o.name +
                              ": down (undoes the up script)\n"}}) {
        std::ofstream out(path, std::ios::binary);
        out << body;
        if (!out)
            throw Error(sqlstate::invalid_parameter_value, "cannot write " + path);
    }
    if (o.json)
        std::printf("%s\n", json({{"version", version}, {"up", up}, {"down", down}}).dump(2).c_str());
    else
        std::printf("created %s\ncreated %s\n", up.c_str(), down.c_str());
    return 0;
}

int run_baseline()
{
    const MigrateOptions& o = options();
    if (!is_version(o.version))
        usage_error("baseline needs a version (digits)");
    Connection conn = connect_ledger();
    conn.exec_params("SELECT warden.baseline_migrations($1, $2)",
                     {o.version, o.name.empty() ? "baseline" : o.name});
    if (o.json)
        std::printf("%s\n", json({{"baseline", o.version}}).dump(2).c_str());
    else
        std::printf("baseline at version %s: earlier versions count as applied\n", o.version.c_str());
    return 0;
}

int run_repair()
{
    const MigrateOptions& o = options();
    if (!is_version(o.version))
        usage_error("repair needs a version (digits)");
    if (o.resolution != "retry" && o.resolution != "applied")
        usage_error("--resolution is retry or applied");
    Connection conn = connect_ledger();
    auto res = conn.exec_params("SELECT warden.repair_migration($1, $2), "
                                "(SELECT coalesce(string_agg(i, ', '), '') FROM warden.invalid_indexes() i)",
                                {o.version, o.resolution});
    std::string state = PQgetvalue(res.get(), 0, 0);
    std::string invalid = PQgetvalue(res.get(), 0, 1);
    if (o.json) {
        std::printf("%s\n", json({{"version", o.version}, {"state", state},
                                  {"invalid_indexes", invalid}}).dump(2).c_str());
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
        std::printf("%s\n", j.dump(2).c_str());
    return 0;
}

void add_common(CLI::App* cmd, bool with_dir)
{
    MigrateOptions& o = options();
    add_connection_option(cmd, o.conn);
    if (with_dir)
        cmd->add_option("--dir", o.dir, "folder of migration files (default: migrations)");
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
    add_common(status, true);
    on_run(status, [] { return run_status(false); });

    CLI::App* up = migrate->add_subcommand("up", "apply pending migrations, each in its own transaction");
    add_common(up, true);
    up->add_option("--target", o.target, "apply up to this version only");
    up->add_flag("--dry-run", o.dry_run, "run the pending migrations in a transaction that is rolled back");
    up->add_flag("--allow-out-of-order", o.allow_out_of_order,
                 "apply pending versions older than the latest applied one");
    on_run(up, run_up);

    CLI::App* down = migrate->add_subcommand("down", "roll back the latest migration, or down to --target");
    add_common(down, false);
    down->add_option("--target", o.target, "roll back every migration above this version");
    down->add_flag("--dry-run", o.dry_run, "roll back in a transaction that is rolled back");
    on_run(down, run_down);

    CLI::App* verify_cmd = migrate->add_subcommand(
        "verify", "compare the files with the ledger; exit 1 if modified, missing or failed");
    add_common(verify_cmd, true);
    on_run(verify_cmd, [] { return run_status(true); });

    CLI::App* create = migrate->add_subcommand("create", "create NAME's up and down files");
    create->add_option("name", o.name, "migration name (letters, digits, _ and -)")->required();
    create->add_option("--dir", o.dir, "folder of migration files (default: migrations)");
    create->add_flag("--sequential", o.sequential, "next number (001, 002, ...) instead of a UTC timestamp");
    create->add_flag("--json", o.json, "machine-readable output on stdout");
    on_run(create, run_create);

    CLI::App* baseline = migrate->add_subcommand(
        "baseline", "mark every version up to VERSION as applied without running it");
    baseline->add_option("version", o.version, "the version the database already matches")->required();
    baseline->add_option("--name", o.name, "name recorded for the baseline");
    add_common(baseline, false);
    on_run(baseline, run_baseline);

    CLI::App* repair = migrate->add_subcommand(
        "repair", "resolve a failed or interrupted non-transactional migration");
    repair->add_option("version", o.version, "the failed migration's version")->required();
    repair->add_option("--resolution", o.resolution,
                       "retry (run it again on the next up) or applied (it was completed by hand)");
    add_common(repair, false);
    on_run(repair, run_repair);

    CLI::App* history = migrate->add_subcommand("history", "the ledger's event log, oldest first");
    history->add_option("--limit", o.limit, "number of latest events (default 50)");
    add_common(history, false);
    on_run(history, run_history);
}

}  // namespace

static const bool registered = add_command_group(20, add_migrate_commands);

}  // namespace warden::cli
