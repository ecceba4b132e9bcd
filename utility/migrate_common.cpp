#include "migrate_common.hpp"

#include <fmt/core.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
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

const std::string& stored_down_sql(const MigrationFile& m)
{
    if (m.down_transactional || parse_directives(m.down_sql, m.down_file).no_transaction)
        return m.down_sql;
    // Kept for the life of the command, as the MigrationFile is.
    static std::map<const MigrationFile*, std::string> marked;
    auto& text = marked[&m];
    if (text.empty())
        text = "-- warden:no-transaction\n" + m.down_sql;
    return text;
}

const std::string& shown_version(const MigrationFile& m)
{
    return m.file_version.empty() ? m.version : m.file_version;
}

std::string ledger_target(const std::string& target)
{
    if (is_version(target) && options().layout != Layout::flyway)
        return target;
    if (options().layout == Layout::flyway) {
        try {
            return flyway_ledger_version(target);
        } catch (const Error&) {
        }
        usage_error("--target must be a Flyway version (digits and dots)");
    }
    usage_error("--target must be a version (digits)");
}

void take_migration_lock(Connection& conn)
{
    auto info = conn.exec(
        "SELECT pg_catalog.to_regprocedure('warden.try_migration_lock()') IS NOT NULL, "
        "  (SELECT setting::bigint FROM pg_catalog.pg_settings "
        "   WHERE name = 'warden.migration_lock_timeout')");
    if (std::string(PQgetvalue(info.get(), 0, 0)) != "t")
        return;
    long long timeout_ms = std::atoll(PQgetvalue(info.get(), 0, 1));
    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    auto pause = std::chrono::milliseconds(2);
    bool announced = false;
    for (;;) {
        auto res = conn.exec("SELECT warden.try_migration_lock()");
        if (PQgetisnull(res.get(), 0, 0))
            return;
        std::string holder = PQgetvalue(res.get(), 0, 0);
        if (!announced)
            progress("waiting for the migration lock, held by " + holder);
        announced = true;
        auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
        if (timeout_ms > 0 && waited.count() >= timeout_ms)
            throw Error(sqlstate::lock_not_available,
                        fmt::format("another migration holds the migration lock; gave up after {} ms",
                                    timeout_ms),
                        "The lock is held by " + holder + ".",
                        "Wait for it to finish, or raise --lock-timeout.");
        auto left = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms - waited.count() : pause.count());
        std::this_thread::sleep_for(std::min(pause, left));
        pause = std::min(pause * 2, std::chrono::milliseconds(100));
    }
}

namespace {

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

}  // namespace

void run_statements(Connection& conn, const std::string& ledger_version, const std::string& what,
                    const std::string& script)
{
    auto split = conn.exec_params("SELECT line, statement FROM warden.split_script($1)", {script});
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
            fmt::format("{} failed at line {}: {}", what,
                        line + (pos ? lines_before(statement, std::atoi(pos)) : 0),
                        msg ? msg : PQerrorMessage(conn.get()));
        conn.exec_params("SELECT warden.fail_migration($1, $2)", {ledger_version, message});
        throw Error(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE)
                        ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE)
                        : "XX000",
                    message, "",
                    fmt::format("The migration is recorded as failed; fix the database, then "
                                "warden migrate repair {}.",
                                ledger_version));
    }
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
                    PQgetvalue(res.get(), i, 2), "", PQgetvalue(res.get(), i, 3), ""};
        auto file = by_version.find(version_key(r.version));
        r.shown = r.version;
        if (file != by_version.end()) {
            r.shown = shown_version(*file->second);
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
                                    label(r.shown, r.name), r.state, r.version));
        if (r.state == "modified")
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        fmt::format("migration {} was modified after it was applied (applied "
                                    "checksum {}, file checksum {})",
                                    label(r.shown, r.name), r.applied_checksum, r.file_checksum));
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
    auto layout = parse_layout(options().format);
    if (!layout)
        usage_error("--format is auto, golang-migrate, flyway, dbmate or suffixed");
    repeatables().clear();
    return load_migration_dir(options().dir, options().follow_symlinks, *layout, &options().layout,
                              &repeatables());
}

std::vector<RepeatableFile>& repeatables()
{
    static std::vector<RepeatableFile> files;
    return files;
}

std::vector<std::pair<const RepeatableFile*, std::string>> repeatable_states(Connection& conn)
{
    std::vector<std::pair<const RepeatableFile*, std::string>> out;
    if (repeatables().empty())
        return out;
    auto exists = conn.exec("SELECT pg_catalog.to_regclass('warden.repeatable_migrations') IS NOT NULL");
    if (std::string(PQgetvalue(exists.get(), 0, 0)) != "t")
        return out;
    auto res = conn.exec("SELECT name, checksum FROM warden.repeatable_migrations");
    std::map<std::string, std::string> applied;
    for (int i = 0; i < PQntuples(res.get()); ++i)
        applied[PQgetvalue(res.get(), i, 0)] = PQgetvalue(res.get(), i, 1);
    for (const auto& r : repeatables()) {
        auto a = applied.find(r.name);
        out.emplace_back(&r, a != applied.end() && a->second == r.checksum ? "ok" : "pending");
    }
    return out;
}

std::vector<MigrationFile> note_folder_layout()
{
    struct stat st;
    if (stat(options().dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return {};
    try {
        return load_files();
    } catch (const Error&) {
        // A command that needs no file still works with a folder it can't read.
        return {};
    }
}

std::string shown_of(const std::string& ledger_version, const std::vector<MigrationFile>& files)
{
    if (ledger_version.empty())
        return ledger_version;
    for (const auto& f : files)
        if (compare_versions(f.version, ledger_version) == 0)
            return shown_version(f);
    return ledger_version;
}

[[noreturn]] void usage_error(const std::string& message)
{
    std::fprintf(stderr, "warden: %s\n", message.c_str());
    throw ExitCode{2};
}

}  // namespace warden::cli::migrate
