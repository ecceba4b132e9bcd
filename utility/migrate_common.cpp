#include "migrate_common.hpp"

#include <fmt/core.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <unordered_map>

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
    return std::string(warden::version_key(v));
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

// The verify_migration_lines argument: versions are digits, names letters, digits, _ and
// - (checked when the folder is read), checksums hex, so tabs and newlines can separate
// them.
std::string file_lines(const std::vector<MigrationFile>& files)
{
    std::string out;
    out.reserve(files.size() * 96);
    for (const auto& f : files) {
        out += f.version;
        out += '\t';
        out += f.name;
        out += '\t';
        out += f.checksum;
        out += '\n';
    }
    return out;
}

}  // namespace

std::vector<VerifyRow> verify(Connection& conn, const std::vector<MigrationFile>& files)
{
    // Names and checksums the folder already has are not sent back (NULL: the same as the
    // file's): with 10,000 files that is most of the answer.
    auto res = conn.exec_params(
        "SELECT version, CASE WHEN file_checksum IS NULL THEN name END, state, "
        "       CASE WHEN applied_checksum = file_checksum THEN NULL "
        "            ELSE coalesce(applied_checksum, '') END "
        "FROM warden.verify_migration_lines($1)",
        {file_lines(files)});
    std::unordered_map<std::string, const MigrationFile*> by_version;
    by_version.reserve(files.size());
    for (const auto& f : files)
        by_version.emplace(version_key(f.version), &f);
    std::vector<VerifyRow> rows;
    rows.reserve(PQntuples(res.get()));
    bool any_failed = false;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        VerifyRow r{PQgetvalue(res.get(), i, 0), PQgetvalue(res.get(), i, 1),
                    PQgetvalue(res.get(), i, 2), "", PQgetvalue(res.get(), i, 3)};
        auto file = by_version.find(version_key(r.version));
        if (file != by_version.end()) {
            r.name = file->second->name;
            r.file_checksum = file->second->checksum;
            if (PQgetisnull(res.get(), i, 3))  // the same as the file's
                r.applied_checksum = r.file_checksum;
        }
        any_failed = any_failed || r.state == "failed";
        rows.push_back(std::move(r));
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
    return load_migration_dir(options().dir, options().follow_symlinks);
}

[[noreturn]] void usage_error(const std::string& message)
{
    std::fprintf(stderr, "warden: %s\n", message.c_str());
    throw ExitCode{2};
}

}  // namespace warden::cli::migrate
