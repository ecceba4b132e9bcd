#include "restore_object.hpp"

#include <libpq-fe.h>

#include <fstream>
#include <memory>

#include "backup_drill.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "process.hpp"
#include "sealed_dump.hpp"

namespace warden {

namespace {

// Tables as the logical backup's row counts name them ("schema"."name" as %I.%I).
constexpr const char* kUserTables = R"(
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

std::map<std::string, std::int64_t> count_tables(Connection& conn, const std::string& only = "")
{
    std::map<std::string, std::int64_t> out;
    auto res = conn.exec(kUserTables);
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        std::string name = PQgetvalue(res.get(), i, 0);
        if (!only.empty() && name != only)
            continue;
        auto one = conn.exec("SELECT count(*) FROM " + name);
        out[name] = std::stoll(PQgetvalue(one.get(), 0, 0));
    }
    return out;
}

std::string quoted_name(Connection& conn, const std::string& schema, const std::string& name)
{
    auto res = conn.exec_params("SELECT format('%I.%I', $1::text, $2::text)", {schema, name});
    return PQgetvalue(res.get(), 0, 0);
}

// pg_dump's -t takes a pattern: the name goes in double quotes, so case and dots are
// kept, and the characters that stay special inside quotes are refused by split_table_name.
std::string dump_pattern(const std::string& schema, const std::string& name)
{
    return "\"" + schema + "\".\"" + name + "\"";
}

void check_target_empty(Connection& target, const std::string& table, const std::string& db_shown)
{
    auto existing = count_tables(target, table);
    if (!table.empty() && !existing.empty())
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "table " + table + " already exists in the target database " + db_shown, {},
                    "Restore into another database, or drop or rename the table first.");
    if (table.empty() && !existing.empty())
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "the target database " + db_shown + " is not empty (" + std::to_string(existing.size()) +
                        " tables)",
                    {}, "Create an empty database for it: createdb NAME.");
}

// With sealed_backup, the dump is that backup folder's dump.enc, opened into a pipe.
void load_into(Connection& target, const std::vector<std::string>& restore_args, const std::string& sealed_backup = {})
{
    ClientConnection client(target.get());
    std::vector<std::string> argv = {"pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", "-d",
                                     client.conninfo()};
    argv.insert(argv.end(), restore_args.begin(), restore_args.end());
    if (!sealed_backup.empty())
        run_on_sealed_dump(argv, sealed_backup, client.env(), "", client.inherit_fds());
    else
        run_checked(argv, client.env(), "", client.inherit_fds());
}

// A table alone lands in its schema, created when the target lacks it (pg_dump -t does
// not dump the schema).
void create_schema(Connection& target, const std::string& schema)
{
    auto sql = target.exec_params("SELECT format('CREATE SCHEMA %I', $1::text) WHERE NOT EXISTS "
                                  "(SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text)",
                                  {schema});
    if (PQntuples(sql.get()) == 1)
        target.exec(PQgetvalue(sql.get(), 0, 0));
}

// The dump's table of contents without foreign keys: they point at tables the target
// may not have, and one table restored alone is restored without them (docs/backup.md).
std::string list_without_foreign_keys(const std::string& dump, const std::string& folder)
{
    std::string full = folder + "/object.list";
    run_checked({"pg_restore", "-l", "-f", full, dump});
    std::ifstream in(full);
    std::string line, kept;
    while (std::getline(in, line))
        if (line.find(" FK CONSTRAINT ") == std::string::npos)
            kept += line + "\n";
    std::string filtered = folder + "/object-no-fk.list";
    std::ofstream out(filtered);
    out << kept;
    out.close();
    if (!out)
        throw Error("58030", "could not write \"" + filtered + "\"");
    return filtered;
}

void compare_counts(const std::map<std::string, std::int64_t>& backup, Connection& target, const std::string& table)
{
    auto restored = count_tables(target, table);
    for (const auto& [name, rows] : backup) {
        auto it = restored.find(name);
        if (it == restored.end())
            throw Error("XX001", "table " + name + " is missing from the target after the restore");
        if (it->second != rows)
            throw Error("XX001", "table " + name + " has " + std::to_string(it->second) +
                                     " rows in the target, " + std::to_string(rows) + " in the backup");
    }
}

}  // namespace

std::pair<std::string, std::string> split_table_name(const std::string& table)
{
    std::size_t dot = table.find('.');
    bool ok = dot != std::string::npos && dot > 0 && dot + 1 < table.size() &&
              table.find('.', dot + 1) == std::string::npos &&
              table.find_first_of("\"*?|+()[]{}^$\\") == std::string::npos;
    for (char c : table)
        ok = ok && static_cast<unsigned char>(c) >= 0x20;
    if (!ok)
        throw Error(sqlstate::invalid_parameter_value,
                    "--table wants SCHEMA.NAME as stored (no quotes, patterns or further dots), got \"" + table + "\"");
    return {table.substr(0, dot), table.substr(dot + 1)};
}

ObjectRestoreReport restore_object(const std::string& dir, const BackupInfo& info, const ObjectRestoreOptions& opts)
{
    if (opts.into.empty())
        throw Error(sqlstate::invalid_parameter_value, "--into CONNINFO is required with --table or --database");
    std::string schema, name;
    if (!opts.table.empty())
        std::tie(schema, name) = split_table_name(opts.table);
    if (info.kind == "logical" && !opts.database.empty() && opts.database != info.database)
        throw Error(sqlstate::invalid_parameter_value,
                    "backup " + info.id + " holds database " + info.database + ", not " + opts.database);
    Connection target(opts.into, false, "warden restore");
    std::string target_db = PQdb(target.get());
    std::string table = opts.table.empty() ? "" : quoted_name(target, schema, name);
    check_target_empty(target, table, target_db);

    ObjectRestoreReport report;
    if (info.kind == "logical") {
        report.source_database = info.database;
        std::map<std::string, std::int64_t> expected;
        for (const auto& [t, rows] : info.row_counts)
            if (table.empty() || t == table)
                expected[t] = rows;
        if (!table.empty() && expected.empty())
            throw Error("42P01", "backup " + info.id + " has no table " + table);
        std::vector<std::string> args;
        if (!table.empty()) {
            create_schema(target, schema);
            args = {"-n", schema, "-t", name};
        }
        if (info.encryption_salt.empty()) {
            args.push_back(dir + "/" + info.id + "/dump");
            load_into(target, args);
        } else {
            load_into(target, args, dir + "/" + info.id);
        }
        compare_counts(expected, target, table);
        report.rows = expected;
        return report;
    }

    report.source_database = opts.database.empty() ? target_db : opts.database;
    DrillOptions d;
    d.scratch = opts.scratch;
    d.os_user = opts.os_user;
    d.quiet = opts.quiet;
    ScratchServer scratch(dir, info, d);
    Connection source(scratch.conninfo(report.source_database), false, "warden restore");
    auto expected = count_tables(source, table);
    if (!table.empty() && expected.empty())
        throw Error("42P01", "backup " + info.id + " has no table " + table + " in database " +
                                                   report.source_database);
    std::string dump = scratch.folder() + "/object.dump";
    ClientConnection client(source.get());
    std::vector<std::string> argv = {"pg_dump", "-Fc", "-f", dump, "-d", client.conninfo()};
    if (!table.empty()) {
        argv.push_back("-t");
        argv.push_back(dump_pattern(schema, name));
    }
    run_checked(argv, client.env(), "", client.inherit_fds());
    if (table.empty()) {
        load_into(target, {dump});
    } else {
        create_schema(target, schema);
        load_into(target, {"-L", list_without_foreign_keys(dump, scratch.folder()), dump});
    }
    compare_counts(expected, target, table);
    report.rows = expected;
    return report;
}

}  // namespace warden
