// warden migrate plan: what each pending migration would lock, rewrite and scan, and for
// how long, before it runs for real; and the policy check `up` makes first.
#include "migrate_plan.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <map>
#include <optional>

#include "error.hpp"
#include "json_text.hpp"

namespace warden::cli::migrate {

using nlohmann::json;

std::vector<const MigrationFile*> pending_files(const std::vector<MigrationFile>& files,
                                                const std::vector<VerifyRow>& rows)
{
    const MigrateOptions& o = options();
    std::map<std::string, const MigrationFile*> by_key;
    for (const auto& f : files)
        by_key[version_key(f.version)] = &f;
    std::string target = o.target.empty() ? "" : ledger_target(o.target);
    std::vector<const MigrationFile*> pending;
    for (const auto& r : rows)
        if (r.state == "pending" && (target.empty() || compare_versions(r.version, target) <= 0))
            pending.push_back(by_key.at(version_key(r.version)));
    return pending;
}

namespace {

std::string worst(const std::string& a, const std::string& b)
{
    static const std::map<std::string, int> rank = {{"ok", 0}, {"warn", 1}, {"refuse", 2}};
    return rank.at(a) >= rank.at(b) ? a : b;
}

json plan_one(Connection& conn, const MigrationFile& m, bool run)
{
    auto res = conn.exec_params("SELECT warden._plan_migration($1, $2, $3)::text",
                                {m.version, m.up_sql, run && m.transactional ? "true" : "false"});
    return json::parse(PQgetvalue(res.get(), 0, 0));
}

// Carries a planned migration's effects forward inside the plan's transaction.
void apply_inside(Connection& conn, const MigrationFile& m)
{
    const char* params[] = {m.version.c_str(), m.name.c_str(), m.up_sql.c_str(),
                            m.has_down ? m.down_sql.c_str() : nullptr,
                            options().allow_out_of_order ? "true" : "false"};
    ResultPtr res(PQexecParams(conn.get(), "SELECT warden.apply_migration($1, $2, $3, $4, $5)", 5,
                               nullptr, params, nullptr, nullptr, 0));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK)
        throw_result_error(res.get(), conn.get());
}

// True when a statement names a table that existed before and holds rows.
bool touches_populated_table(const json& statements)
{
    for (const json& s : statements)
        for (const json& t : s.value("tables", json::array()))
            if (!t.value("new", false) && (t.value("rows", 0.0) > 0 || t.value("bytes", 0.0) > 0))
                return true;
    return false;
}

std::string directive_for(const std::string& code)
{
    if (code == "PW111")
        return "rewrite";
    if (code == "PW112")
        return "scan";
    return "lock";
}

std::string ms_text(double ms)
{
    return fmt::format("{:.1f} ms", ms);
}

void print_plan(const MigrationPlan& p)
{
    std::printf("%s (%s): %s\n", label(shown_version(*p.file), p.file->name).c_str(),
                p.file->transactional ? "run and rolled back" : "no-transaction, judged by its text",
                p.verdict.c_str());
    for (const json& s : p.statements) {
        std::printf("  line %d: %s", s.value("line", 0), s.value("statement", "").c_str());
        if (s.value("ran", false))
            std::printf("  [%s]", ms_text(s.value("duration_ms", 0.0)).c_str());
        std::printf("\n");
        for (const json& l : s["locks"])
            std::printf("    lock %s on %s, held %s\n", l.value("mode", "").c_str(),
                        l.value("relation", "").c_str(), ms_text(l.value("held_ms", 0.0)).c_str());
        for (const json& t : s["tables"])
            std::printf("    table %s: %.0f rows, %.0f bytes%s\n", t.value("relation", "").c_str(),
                        t.value("rows", 0.0), t.value("bytes", 0.0),
                        t.value("new", false) ? " (created by this plan)" : "");
        for (const json& r : s["rewrites"])
            std::printf("    rewrite of %s (%s)\n", r.value("relation", "").c_str(),
                        r.value("reason", "").c_str());
        for (const json& c : s["scans"])
            std::printf("    scan of %s: %.0f rows (%s)\n", c.value("relation", "").c_str(),
                        c.value("rows", 0.0), c.value("reason", "").c_str());
        for (const json& f : s["findings"]) {
            std::printf("    %s %s: %s\n", f.value("code", "").c_str(), f.value("action", "").c_str(),
                        f.value("message", "").c_str());
            std::printf("      instead: %s\n", f.value("alternative", "").c_str());
        }
    }
}

}  // namespace

// The judgement of each migration by its text alone, pipelined: one round trip for a
// batch instead of one per migration, which was most of the fixed cost of `up` on many
// small migrations.
std::vector<json> plan_texts(Connection& conn, const std::vector<const MigrationFile*>& pending)
{
    constexpr std::size_t kBatch = 200;
    PGconn* c = conn.get();
    std::vector<json> out;
    out.reserve(pending.size());
    for (std::size_t from = 0; from < pending.size(); from += kBatch) {
        std::size_t to = std::min(pending.size(), from + kBatch);
        if (PQenterPipelineMode(c) != 1)
            throw Error("08006", "could not enter pipeline mode");
        for (std::size_t i = from; i < to; ++i) {
            const char* params[] = {pending[i]->version.c_str(), pending[i]->up_sql.c_str(), "false"};
            if (!PQsendQueryParams(c, "SELECT warden._plan_migration($1, $2, $3)::text", 3, nullptr,
                                   params, nullptr, nullptr, 0))
                throw Error("08006", PQerrorMessage(c));
        }
        if (!PQpipelineSync(c))
            throw Error("08006", PQerrorMessage(c));
        std::optional<Error> failure;
        for (std::size_t i = from; i < to; ++i) {
            ResultPtr res(PQgetResult(c));
            while (PGresult* extra = PQgetResult(c))
                PQclear(extra);
            if (PQresultStatus(res.get()) == PGRES_TUPLES_OK) {
                out.push_back(json::parse(PQgetvalue(res.get(), 0, 0)));
            } else if (!failure && PQresultStatus(res.get()) != PGRES_PIPELINE_ABORTED) {
                try {
                    throw_result_error(res.get(), c);
                } catch (const Error& e) {
                    failure = e;
                }
            }
        }
        ResultPtr sync(PQgetResult(c));
        if (PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
            throw Error("08006", "unexpected reply at the end of a pipeline");
        PQexitPipelineMode(c);
        if (failure)
            throw *failure;
    }
    return out;
}

std::vector<MigrationPlan> plan_pending(Connection& conn,
                                        const std::vector<const MigrationFile*>& pending, bool run)
{
    std::vector<MigrationPlan> plans;
    if (!run) {
        auto judged = plan_texts(conn, pending);
        for (std::size_t i = 0; i < pending.size(); ++i) {
            MigrationPlan p{pending[i], std::move(judged[i]), "ok"};
            for (const json& s : p.statements)
                p.verdict = worst(p.verdict, s.value("verdict", "ok"));
            plans.push_back(std::move(p));
        }
        return plans;
    }
    conn.exec("BEGIN");
    try {
        for (const MigrationFile* m : pending) {
            MigrationPlan p{m, plan_one(conn, *m, true), "ok"};
            for (const json& s : p.statements)
                p.verdict = worst(p.verdict, s.value("verdict", "ok"));
            plans.push_back(std::move(p));
            if (m->transactional)
                apply_inside(conn, *m);
        }
    } catch (const Error&) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw;
    }
    conn.exec("ROLLBACK");
    return plans;
}

json plan_json(const std::vector<MigrationPlan>& plans)
{
    json out = json::array();
    for (const auto& p : plans)
        out.push_back({{"version", shown_version(*p.file)},
                       {"name", p.file->name},
                       {"transactional", p.file->transactional},
                       {"verdict", p.verdict},
                       {"statements", p.statements}});
    return out;
}

void check_plan_before_up(Connection& conn, const std::vector<const MigrationFile*>& pending)
{
    if (pending.empty())
        return;
    bool needed = false;
    for (const auto& p : plan_pending(conn, pending, false))
        needed = needed || touches_populated_table(p.statements);
    if (!needed)
        return;
    const MigrateOptions& o = options();
    for (const auto& p : plan_pending(conn, pending, true)) {
        for (const json& s : p.statements) {
            for (const json& f : s["findings"]) {
                std::string action = f.value("action", "");
                std::string where = fmt::format("migration {} ({}), line {}, {}", shown_version(*p.file),
                                                p.file->name, s.value("line", 0),
                                                f.value("relation", ""));
                if (action == "refuse")
                    throw Error(sqlstate::object_not_in_prerequisite_state,
                                fmt::format("{} refused by the migration policy: {} ({} {})", where,
                                            f.value("message", ""), f.value("code", ""),
                                            f.value("name", "")),
                                "Nothing was applied.",
                                fmt::format("Instead: {} To run it anyway, add \"-- warden:allow {}\" "
                                            "to the migration (recorded in the ledger).",
                                            f.value("alternative", ""),
                                            directive_for(f.value("code", ""))));
                if (!o.quiet && !o.json)
                    std::fprintf(stderr, "warden: %s %s: %s: %s\n", action.c_str(),
                                 f.value("code", "").c_str(), where.c_str(),
                                 f.value("message", "").c_str());
            }
        }
    }
}

int run_plan()
{
    const MigrateOptions& o = options();
    auto files = load_files();
    if (!o.target.empty())
        ledger_target(o.target);
    Connection conn = connect_ledger();
    // The plan runs the migrations in a transaction: waiting for the lock in there while
    // another applier's CREATE INDEX CONCURRENTLY waits for that transaction would deadlock.
    take_migration_lock(conn);
    auto rows = verify(conn, files);
    check_history(rows);
    auto plans = plan_pending(conn, pending_files(files, rows), true);
    std::map<std::string, int> counts;
    for (const auto& p : plans)
        counts[p.verdict]++;
    if (o.json) {
        std::printf("%s\n", json_text(json{{"migrations", plan_json(plans)},
                                            {"counts", {{"ok", counts["ok"]}, {"warn", counts["warn"]},
                                                        {"refuse", counts["refuse"]}}}})
                                .c_str());
    } else {
        for (const auto& p : plans)
            print_plan(p);
        if (!o.quiet)
            std::printf("%zu pending: %d ok, %d warn, %d refused by the policy; nothing was applied\n",
                        plans.size(), counts["ok"], counts["warn"], counts["refuse"]);
    }
    return counts["refuse"] ? 1 : 0;
}

}  // namespace warden::cli::migrate
