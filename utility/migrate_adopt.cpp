// warden migrate adopt --from TOOL: another tool's history becomes the ledger's. The
// applied versions are read from the tool's own table (never written), matched to the
// folder's files, and recorded with warden.adopt_migration in one transaction, each with
// today's checksum of its file; `up` then applies only what the tool had not.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "error.hpp"
#include "json_text.hpp"
#include "migrate_common.hpp"

namespace warden::cli::migrate {

namespace {

using nlohmann::json;

[[noreturn]] void refuse(const std::string& message, const std::string& hint = {})
{
    throw Error(sqlstate::object_not_in_prerequisite_state, message, "", hint);
}

// A file's name without its direction and extension: node-pg-migrate's name for it.
std::string file_stem(const std::string& file)
{
    for (const char* suffix : {".up.sql", ".down.sql", ".sql"}) {
        std::string s = suffix;
        if (file.size() > s.size() && file.compare(file.size() - s.size(), s.size(), s) == 0)
            return file.substr(0, file.size() - s.size());
    }
    return file;
}

const char* default_table(const std::string& tool)
{
    if (tool == "flyway")
        return "flyway_schema_history";
    if (tool == "node-pg-migrate")
        return "pgmigrations";
    return "schema_migrations";
}

}  // namespace

int run_adopt()
{
    const MigrateOptions& o = options();
    auto files = load_files();
    Connection conn = connect_ledger();
    take_migration_lock(conn);

    std::string table_arg = o.from_table.empty() ? default_table(o.from) : o.from_table;
    auto found = conn.exec_params("SELECT pg_catalog.to_regclass($1)::text", {table_arg});
    if (PQgetisnull(found.get(), 0, 0))
        refuse(fmt::format("{}'s history table {} does not exist", o.from, table_arg),
               "Pass --table if the tool was configured with another table name.");
    std::string table = PQgetvalue(found.get(), 0, 0);  // quoted as the server prints it

    std::map<std::string, const MigrationFile*> by_key, by_stem;
    for (const auto& f : files) {
        by_key[version_key(f.version)] = &f;
        by_stem[file_stem(f.up_file)] = &f;
    }
    std::set<const MigrationFile*> applied;
    std::vector<std::string> missing;
    auto take = [&](const std::string& key, const std::string& shown) {
        auto f = by_key.find(version_key(key));
        if (f == by_key.end())
            missing.push_back(shown);
        else
            applied.insert(f->second);
    };

    if (o.from == "flyway") {
        // Versioned rows in order: an undo takes its version back out; a failed row (or a
        // repeatable's NULL version) is not an applied version.
        auto res = conn.exec("SELECT version, type, success FROM " + table +
                             " WHERE version IS NOT NULL ORDER BY installed_rank");
        std::map<std::string, std::string> state;  // ledger key -> Flyway version
        std::string baseline;  // a BASELINE row: every version up to it counts as applied
        for (int i = 0; i < PQntuples(res.get()); ++i) {
            std::string version = PQgetvalue(res.get(), i, 0);
            std::string type = PQgetvalue(res.get(), i, 1);
            if (type == "SCHEMA")
                continue;
            if (std::string(PQgetvalue(res.get(), i, 2)) != "t")
                refuse(fmt::format("{} records a failed migration, version {}: repair it with "
                                   "Flyway first; nothing adopted",
                                   table, version));
            std::string key;
            try {
                key = o.layout == Layout::flyway ? flyway_ledger_version(version) : version;
            } catch (const Error&) {
                key.clear();
            }
            if (key.empty() || !is_version(key))
                refuse(fmt::format("{} has version \"{}\", which the folder's layout can't hold",
                                   table, version));
            if (type.rfind("UNDO", 0) == 0)
                state.erase(version_key(key));
            else if (type == "BASELINE")
                baseline = key;
            else
                state[version_key(key)] = version;
        }
        for (const auto& [key, version] : state)
            take(key, version);
        if (!baseline.empty())
            for (const auto& f : files)
                if (compare_versions(f.version, baseline) <= 0)
                    applied.insert(&f);
    } else if (o.from == "golang-migrate") {
        auto res = conn.exec("SELECT version::text, dirty FROM " + table);
        if (PQntuples(res.get()) > 1)
            refuse(fmt::format("{} has {} rows; golang-migrate keeps one", table, PQntuples(res.get())));
        if (PQntuples(res.get()) == 1) {
            std::string version = PQgetvalue(res.get(), 0, 0);
            if (std::string(PQgetvalue(res.get(), 0, 1)) == "t")
                refuse(fmt::format("{} is dirty at version {}: a migration failed half-way; fix "
                                   "the database and force the version with golang-migrate "
                                   "first; nothing adopted",
                                   table, version));
            take(version, version);  // the current version must have its file
            for (const auto& f : files)
                if (compare_versions(f.version, version) <= 0)
                    applied.insert(&f);
        }
    } else if (o.from == "dbmate") {
        auto res = conn.exec("SELECT version::text FROM " + table);
        for (int i = 0; i < PQntuples(res.get()); ++i)
            take(PQgetvalue(res.get(), i, 0), PQgetvalue(res.get(), i, 0));
    } else {
        auto res = conn.exec("SELECT name FROM " + table + " ORDER BY run_on, id");
        for (int i = 0; i < PQntuples(res.get()); ++i) {
            std::string name = PQgetvalue(res.get(), i, 0);
            auto f = by_stem.find(name);
            if (f == by_stem.end())
                missing.push_back(name);
            else
                applied.insert(f->second);
        }
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing)
            list += (list.empty() ? "" : ", ") + m;
        refuse(fmt::format("{} records applied migrations with no file in {}: {}; nothing adopted",
                           table, o.dir, list),
               "Restore the files, or pass the folder the tool used (--dir).");
    }

    std::vector<const MigrationFile*> ordered(applied.begin(), applied.end());
    std::sort(ordered.begin(), ordered.end(), [](const MigrationFile* a, const MigrationFile* b) {
        return compare_versions(a->version, b->version) < 0;
    });
    std::map<std::string, int> counts;
    json out = json::array();
    conn.exec("BEGIN");
    try {
        for (const MigrationFile* m : ordered) {
            auto res = conn.exec_params(
                "SELECT warden.adopt_migration($1, $2, $3, CASE WHEN $6 THEN $4 END, $5)",
                {m->version, m->name, m->up_sql, m->has_down ? stored_down_sql(*m) : "", o.from,
                 m->has_down ? "true" : "false"});
            std::string result = PQgetvalue(res.get(), 0, 0);
            counts[result]++;
            out.push_back({{"version", shown_version(*m)}, {"name", m->name}, {"result", result}});
            progress(fmt::format("{} {}", result, label(shown_version(*m), m->name)));
        }
        conn.exec("COMMIT");
    } catch (const Error&) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw;
    }
    if (o.json) {
        std::printf("%s\n", json_text(json{{"from", o.from}, {"table", table}, {"migrations", out}}).c_str());
    } else if (!o.quiet) {
        std::printf("%d adopted, %d already in the ledger, from %s (%s left untouched); %zu "
                    "pending in %s\n",
                    counts["adopted"], counts["skipped"], o.from.c_str(), table.c_str(),
                    files.size() - ordered.size(), o.dir.c_str());
    }
    return 0;
}

}  // namespace warden::cli::migrate
