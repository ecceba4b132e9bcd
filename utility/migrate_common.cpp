#include "migrate_common.hpp"

#include <fmt/core.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "error.hpp"

namespace warden::cli::migrate {

MigrateOptions& options()
{
    static MigrateOptions opts;
    return opts;
}

void progress(const std::string& line)
{
    if (!options().quiet && !options().json && isatty(STDERR_FILENO))
        std::fprintf(stderr, "%s\n", line.c_str());
}

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

namespace {

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

}  // namespace

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

}  // namespace warden::cli::migrate
