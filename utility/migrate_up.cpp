// warden migrate up and down: pending migrations pipelined, each committed with its
// ledger row; non-transactional ones through begin/finish; rollbacks by the server.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <optional>

#include "backup_common.hpp"
#include "backup_create.hpp"
#include "checksum.hpp"
#include "error.hpp"
#include "migrate_common.hpp"
#include "migrate_plan.hpp"

namespace warden::cli::migrate {

namespace {

using nlohmann::json;

// ---- up ---------------------------------------------------------------------------------

struct Outcome {
    std::string version, name, result;  // applied | skipped | would_apply | not_tried
};

const char* kApply = "SELECT warden.apply_migration($1, $2, $3, $4, $5)";

std::vector<const char*> apply_params(const MigrationFile& m, bool allow_ooo)
{
    return {m.version.c_str(), m.name.c_str(), m.up_sql.c_str(),
            m.has_down ? stored_down_sql(m).c_str() : nullptr, allow_ooo ? "true" : "false"};
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
                out.push_back({shown_version(*m), m->name, PQgetvalue(res.get(), 0, 0)});
                progress(fmt::format("{} {}", out.back().result, label(shown_version(*m), m->name)));
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

// The non-transactional protocol: a committed 'running' row, the statements one by one at
// top level (as psql would run them), then applied or failed.
void apply_no_transaction(Connection& conn, const MigrationFile& m, std::vector<Outcome>& out)
{
    auto params = apply_params(m, options().allow_out_of_order);
    ResultPtr begun(PQexecParams(conn.get(),
                                 "SELECT warden.begin_migration($1, $2, $3, $4, $5)", 5, nullptr,
                                 params.data(), nullptr, nullptr, 0));
    if (PQresultStatus(begun.get()) != PGRES_TUPLES_OK)
        throw_result_error(begun.get(), conn.get());
    if (std::string(PQgetvalue(begun.get(), 0, 0)) == "skipped") {
        out.push_back({shown_version(m), m.name, "skipped"});
        return;
    }
    progress(fmt::format("running {} outside a transaction", label(shown_version(m), m.name)));
    run_statements(conn, m.version, fmt::format("migration {} ({})", shown_version(m), m.name),
                   m.up_sql);
    conn.exec_params("SELECT warden.finish_migration($1)", {m.version});
    out.push_back({shown_version(m), m.name, "applied"});
    progress(fmt::format("applied {}", label(shown_version(m), m.name)));
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
            out.push_back({shown_version(*pending[i]), pending[i]->name,
                           r == "applied" ? "would_apply" : r});
        }
    } catch (const Error&) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw;
    }
    conn.exec("ROLLBACK");
    // A non-transactional migration can't be tried and rolled back; later ones may need it.
    for (; i < pending.size(); ++i)
        out.push_back({shown_version(*pending[i]), pending[i]->name, "not_tried"});
}

}  // namespace

// --backup: the backup is taken, recorded, and published in the catalog before the first
// migration runs; if any of that fails, nothing is migrated.
static void backup_before_migrating(Connection& conn)
{
    const MigrateOptions& o = options();
    std::string dir = o.backup_dir;
    if (dir.empty())
        if (const char* env = std::getenv("WARDEN_BACKUP_DIR"))
            dir = env;
    if (dir.empty())
        usage_error("--backup needs --backup-dir DIR (or WARDEN_BACKUP_DIR)");

    BackupRequest req;
    req.dir = dir;
    req.conninfo = o.conn.conninfo;
    req.label = "before migrate up";
    req.logical = o.backup_kind == "logical";
    req.database = PQdb(conn.get());
    req.quiet = o.quiet || o.json;
    BackupInfo info;
    try {
        info = create_backup(req);
    } catch (const Error& e) {
        throw Error(e.sqlstate(), fmt::format("backup failed, nothing migrated: {}", e.what()),
                    e.detail(), e.hint());
    }
    record_backup_in_database(o.conn.conninfo, info);
    if (!o.quiet && !o.json)
        std::fprintf(stderr, "backup %s taken in %s\n", info.id.c_str(), dir.c_str());
}

int run_up()
{
    const MigrateOptions& o = options();
    auto files = load_files();
    std::string target = o.target.empty() ? "" : ledger_target(o.target);
    Connection conn = connect_ledger();
    // Another applier finishes first; what it applied is then skipped (verify sees it).
    take_migration_lock(conn);
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
        if (!target.empty() && compare_versions(r.version, target) > 0)
            continue;
        const MigrationFile* m = by_key.at(version_key(r.version));
        if (!latest_applied.empty() && compare_versions(m->version, latest_applied) < 0 &&
            !o.allow_out_of_order)
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        fmt::format("migration {} is older than the latest applied migration {}",
                                    label(shown_version(*m), m->name), latest_applied),
                        "", "Pass --allow-out-of-order to apply it anyway.");
        pending.push_back(m);
    }

    if (!o.dry_run)
        check_plan_before_up(conn, pending);

    if (o.backup && !o.dry_run && !pending.empty())
        backup_before_migrating(conn);

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
        // Repeatable migrations after the versioned ones, each changed one in its transaction.
        for (const auto& [r, state] : repeatable_states(conn)) {
            if (state == "ok")
                continue;
            conn.exec("BEGIN");
            try {
                auto res = conn.exec_params("SELECT warden.apply_repeatable($1, $2)", {r->name, r->sql});
                conn.exec("COMMIT");
                out.push_back({"R", r->name, std::string("repeatable_") + PQgetvalue(res.get(), 0, 0)});
                progress(fmt::format("applied repeatable {}", r->name));
            } catch (const Error&) {
                PQclear(PQexec(conn.get(), "ROLLBACK"));
                throw;
            }
        }
    }

    auto current = conn.exec("SELECT coalesce(warden.current_version(), '')");
    std::string version = shown_of(PQgetvalue(current.get(), 0, 0), files);
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
        if (!repeatables().empty())
            std::printf("%d repeatable migration%s re-applied, %zu unchanged\n",
                        counts["repeatable_applied"], counts["repeatable_applied"] == 1 ? "" : "s",
                        repeatables().size() - counts["repeatable_applied"]);
    }
    return 0;
}

// ---- down -------------------------------------------------------------------------------

namespace {

struct RollbackStep {
    std::string version, name, down_checksum;
    bool no_transaction;
};

// down --dir: a down file that differs from the stored down script is worth a warning
// (the stored one runs: it is the one that matches what was applied).
void warn_changed_down_files(const std::vector<RollbackStep>& steps,
                             const std::vector<MigrationFile>& files)
{
    if (options().quiet)
        return;
    std::map<std::string, const MigrationFile*> by_key;
    for (const auto& f : files)
        by_key[version_key(f.version)] = &f;
    for (const auto& s : steps) {
        auto f = by_key.find(version_key(s.version));
        if (f == by_key.end() || !f->second->has_down)
            continue;
        if (script_checksum(stored_down_sql(*f->second)) != s.down_checksum)
            std::fprintf(stderr,
                         "warden: warning: %s differs from the down script stored when %s was "
                         "applied; the stored one runs\n",
                         f->second->down_file.c_str(), label(shown_version(*f->second), s.name).c_str());
    }
}

}  // namespace

int run_down()
{
    const MigrateOptions& o = options();
    // The folder, when there is one, says how --target is written and which down files to
    // compare; down itself runs the stored scripts.
    auto files = note_folder_layout();
    std::string target = o.target.empty() ? "" : ledger_target(o.target);
    Connection conn = connect_ledger();
    take_migration_lock(conn);

    std::vector<RollbackStep> steps;
    bool any_no_transaction = false;
    auto has_plan = conn.exec("SELECT pg_catalog.to_regprocedure('warden.rollback_plan(text)') IS NOT NULL");
    if (std::string(PQgetvalue(has_plan.get(), 0, 0)) == "t") {
        const char* columns = "SELECT version, name, no_transaction, coalesce(down_checksum, '') ";
        auto plan = target.empty()
                        ? conn.exec(std::string(columns) + "FROM warden.rollback_plan()")
                        : conn.exec_params(std::string(columns) + "FROM warden.rollback_plan($1)", {target});
        for (int i = 0; i < PQntuples(plan.get()); ++i) {
            steps.push_back({PQgetvalue(plan.get(), i, 0), PQgetvalue(plan.get(), i, 1),
                             PQgetvalue(plan.get(), i, 3),
                             std::string(PQgetvalue(plan.get(), i, 2)) == "t"});
            any_no_transaction = any_no_transaction || steps.back().no_transaction;
        }
        warn_changed_down_files(steps, files);
    }

    std::vector<std::string> versions;
    if (!any_no_transaction || o.dry_run) {
        // One call rolls every migration back in one transaction (the dry run's too).
        if (o.dry_run)
            conn.exec("BEGIN");
        try {
            auto res = target.empty()
                           ? conn.exec("SELECT v FROM warden.rollback_migration() v")
                           : conn.exec_params("SELECT v FROM warden.rollback_migration($1) v", {target});
            for (int i = 0; i < PQntuples(res.get()); ++i)
                versions.push_back(shown_of(PQgetvalue(res.get(), i, 0), files));
        } catch (const Error&) {
            if (o.dry_run)
                PQclear(PQexec(conn.get(), "ROLLBACK"));
            throw;
        }
        if (o.dry_run)
            conn.exec("ROLLBACK");
    } else {
        // Newest first, each on its own: a transactional down script in its transaction, a
        // non-transactional one through begin_rollback and its statements at top level.
        for (const auto& s : steps) {
            if (!s.no_transaction) {
                conn.exec("SELECT warden.rollback_migration()");
            } else {
                auto begun = conn.exec_params("SELECT warden.begin_rollback($1)", {s.version});
                std::string script = PQgetvalue(begun.get(), 0, 0);
                progress(fmt::format("rolling back {} outside a transaction",
                                     label(shown_of(s.version, files), s.name)));
                run_statements(conn, s.version,
                               fmt::format("rollback of migration {} ({})", shown_of(s.version, files), s.name),
                               script);
                conn.exec_params("SELECT warden.finish_rollback($1)", {s.version});
            }
            versions.push_back(shown_of(s.version, files));
        }
    }
    auto current = conn.exec("SELECT coalesce(warden.current_version(), '')");
    std::string version = shown_of(PQgetvalue(current.get(), 0, 0), files);
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

}  // namespace warden::cli::migrate
