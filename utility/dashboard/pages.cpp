#include "dashboard/pages.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <map>

#include "error.hpp"

namespace warden::dashboard {

namespace {

struct Section {
    const char* title;
    const char* sql;  // rows of a table; $1 is the chart range where used
};

// Checks of the report shown at the top of a page, by name.
const std::map<std::string, std::vector<std::string>>& page_checks()
{
    static const std::map<std::string, std::vector<std::string>> checks = {
        {"tables", {"dead_tuples", "autovacuum_due", "invalid_indexes", "duplicate_indexes",
                    "unused_indexes"}},
        {"migrations", {"migrations_running", "migrations_failed", "migration_drift"}},
        {"backups", {"backup_age", "archive_failing", "archive_lag", "wal_receiver_down",
                     "wal_receiver_lag"}},
        {"jobs", {"job_failures", "jobs_last_run"}},
        {"security", {"failed_logins", "lockouts"}},
    };
    return checks;
}

const std::map<std::string, std::vector<Section>>& page_tables()
{
    // Ordered by catalog estimates and sized only for the rows shown, as the report does.
    static const std::map<std::string, std::vector<Section>> tables = {
        {"tables",
         {{"Largest tables",
           "SELECT h.relation::text AS \"table\", pg_catalog.pg_total_relation_size(h.relid) AS total_bytes, "
           "pg_catalog.pg_relation_size(h.relid) AS table_bytes, h.n_live_tup AS live_rows, "
           "h.n_dead_tup AS dead_rows, h.dead_pct, h.last_autovacuum, h.autovacuum_due "
           "FROM warden._table_health h ORDER BY h.relpages DESC, h.relation::text LIMIT 20"},
          {"Estimated bloat",
           "SELECT b.relation::text AS \"table\", b.table_bytes, b.expected_bytes, b.bloat_bytes, "
           "b.bloat_pct FROM warden.dashboard_bloat(20) b"},
          {"Most dead tuples",
           "SELECT h.relation::text AS \"table\", h.n_dead_tup AS dead_rows, h.dead_pct, "
           "h.last_autovacuum, h.autovacuum_due FROM warden._table_health h "
           "WHERE h.n_dead_tup > 0 ORDER BY h.n_dead_tup DESC LIMIT 20"},
          {"Indexes to look at: invalid, duplicate, unused",
           "SELECT s.indexrelid::regclass::text AS index, s.indrelid::regclass::text AS \"table\", "
           "CASE WHEN s.invalid THEN 'invalid' WHEN s.duplicate_of IS NOT NULL "
           "THEN 'duplicate of ' || s.duplicate_of::regclass::text ELSE 'unused' END AS problem, "
           "pg_catalog.pg_relation_size(s.indexrelid) AS index_bytes, "
           "pg_catalog.pg_stat_get_numscans(s.indexrelid) AS scans, "
           "pg_catalog.pg_get_indexdef(s.indexrelid) AS definition "
           "FROM warden._index_stats(true) s ORDER BY s.invalid DESC, "
           "s.duplicate_of IS NOT NULL DESC, s.estimated_bytes DESC LIMIT 50"}}},
        {"migrations",
         {{"Migrations, newest first",
           "SELECT m.version, m.name, m.state, m.applied_at, m.execution_ms, m.applied_by, m.error "
           "FROM warden.migration_status m ORDER BY m.version::numeric DESC LIMIT 50"},
          {"Drift: DDL outside migrations since the ledger last changed",
           "SELECT d.occurred_at, d.command, d.session_user_name AS by_user, d.application_name "
           "FROM warden.schema_drift d ORDER BY d.occurred_at DESC LIMIT 50"}}},
        {"backups",
         {{"Backups, newest first",
           "SELECT b.id, b.kind, b.status, b.label, b.finished_at, b.verified_at, "
           "b.original_bytes, b.stored_bytes, b.verify_detail "
           "FROM warden.backups b ORDER BY b.finished_at DESC LIMIT 30"},
          {"WAL archive",
           "SELECT a.archived_count, a.last_archived_wal, a.last_archived_time, a.failed_count, "
           "a.last_failed_wal, a.last_failed_time, a.stats_reset FROM pg_catalog.pg_stat_archiver a"}}},
        {"jobs",
         {{"Jobs",
           "SELECT s.job, s.enabled, s.schedule, s.next_run_at, s.consecutive_failures, "
           "s.last_status, s.last_finished_at, s.last_success_at, s.last_error "
           "FROM warden.maintenance_status s ORDER BY s.job"},
          {"Recent runs",
           "SELECT r.job, r.started_at, r.finished_at, r.status, r.rows_affected, r.driver, "
           "r.error_message FROM warden.job_runs r ORDER BY r.id DESC LIMIT 50"}}},
        {"security",
         {{"Recent security events",
           "SELECT e.occurred_at, e.event_type, e.principal, pg_catalog.host(e.source) AS source, "
           "e.failures, e.locked_until, e.actor, e.detail "
           "FROM warden.security_events e ORDER BY e.id DESC LIMIT 100"}}},
    };
    return tables;
}

const std::map<std::string, std::string>& range_intervals()
{
    static const std::map<std::string, std::string> ranges = {
        {"1h", "1 hour"}, {"6h", "6 hours"}, {"24h", "24 hours"}, {"7d", "7 days"}};
    return ranges;
}

// Rows of a query as a JSON array of objects, built by the server (json_agg).
nlohmann::ordered_json rows_of(Connection& conn, const std::string& sql,
                       const std::vector<std::string>& params)
{
    std::string wrapped = "SELECT coalesce(pg_catalog.json_agg(t), '[]')::text FROM (" + sql + ") t";
    auto res = params.empty() ? conn.exec(wrapped) : conn.exec_params(wrapped, params);
    return nlohmann::ordered_json::parse(PQgetvalue(res.get(), 0, 0));
}

// A section's rows, or its error: one unreadable table leaves the rest of the page.
nlohmann::ordered_json table_section(Connection& conn, const std::string& kind, const std::string& title,
                             const std::string& sql, const std::vector<std::string>& params = {})
{
    nlohmann::ordered_json section = {{"kind", kind}, {"title", title}};
    try {
        section["rows"] = rows_of(conn, sql, params);
    } catch (const Error& e) {
        if (PQstatus(conn.get()) != CONNECTION_OK)
            throw;
        section["error"] = e.what();
    }
    return section;
}

}  // namespace

const std::vector<PageInfo>& pages()
{
    static const std::vector<PageInfo> list = {
        {"overview", "/", "Overview", "Is the database healthy right now?"},
        {"charts", "/charts", "Charts", "How has it been doing over time?"},
        {"tables", "/tables", "Tables and indexes", "Which tables and indexes need care?"},
        {"migrations", "/migrations", "Migrations", "Is the schema where the migrations say?"},
        {"backups", "/backups", "Backups and WAL", "Could we restore, and to when?"},
        {"jobs", "/jobs", "Jobs", "Is maintenance running and succeeding?"},
        {"security", "/security", "Security", "Who failed to log in, and who is locked out?"},
    };
    return list;
}

const std::vector<std::string>& chart_ranges()
{
    static const std::vector<std::string> ranges = {"1h", "6h", "24h", "7d"};
    return ranges;
}

bool valid_range(const std::string& range) { return range_intervals().count(range) > 0; }

nlohmann::ordered_json page_data(Connection& conn, const std::string& page, const std::string& range)
{
    const std::string r = valid_range(range) ? range : "24h";
    nlohmann::ordered_json data = {{"page", page}, {"range", r}, {"ranges", chart_ranges()}};
    auto info = std::find_if(pages().begin(), pages().end(),
                             [&](const PageInfo& p) { return p.id == page; });
    if (info != pages().end()) {
        data["title"] = info->title;
        data["question"] = info->question;
    } else {
        data["title"] = "Health report";
        data["question"] = "How is the database, now and over time?";
    }

    // The report gives every page its status line, and the checks shown on each.
    auto res = conn.exec("SELECT warden.health_report()::text");
    nlohmann::ordered_json report = nlohmann::ordered_json::parse(PQgetvalue(res.get(), 0, 0));
    for (const char* key : {"status", "summary", "database", "server_version", "generated_at",
                            "in_recovery"})
        data[key] = report.value(key, nlohmann::ordered_json());

    nlohmann::ordered_json sections = nlohmann::ordered_json::array();
    const auto& all_checks = report.value("checks", nlohmann::ordered_json::array());
    if (page == "overview" || page == "report") {
        sections.push_back({{"kind", "checks"}, {"title", "Checks"}, {"rows", all_checks}});
    } else if (auto it = page_checks().find(page); it != page_checks().end()) {
        nlohmann::ordered_json rows = nlohmann::ordered_json::array();
        for (const auto& c : all_checks)
            if (std::find(it->second.begin(), it->second.end(), c.value("check", "")) != it->second.end())
                rows.push_back(c);
        sections.push_back({{"kind", "checks"}, {"title", "Checks"}, {"rows", rows}});
    }
    if (page == "charts" || page == "report")
        sections.push_back(table_section(
            conn, "series", "Over the last " + r,
            "SELECT s.* FROM warden.dashboard_series s "
            "WHERE s.taken_at > pg_catalog.now() - $1::pg_catalog.interval ORDER BY s.taken_at",
            {range_intervals().at(r)}));
    if (auto it = page_tables().find(page); it != page_tables().end())
        for (const auto& s : it->second)
            sections.push_back(table_section(conn, "table", s.title, s.sql));
    data["sections"] = sections;
    return data;
}

}  // namespace warden::dashboard
