#include <catch2/catch.hpp>

#include "checksum.hpp"
#include "error.hpp"
#include "migration_files.hpp"

using namespace warden;

static std::string layout_error(const std::vector<ScriptFile>& files, Layout layout = Layout::automatic)
{
    try {
        build_migration_set(files, layout);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

static Layout detected(const std::vector<ScriptFile>& files)
{
    Layout out = Layout::automatic;
    build_migration_set(files, Layout::automatic, &out);
    return out;
}

TEST_CASE("layouts: names and --format values", "[migration_layouts]")
{
    CHECK(parse_layout("golang-migrate") == Layout::golang_migrate);
    CHECK(parse_layout("auto") == Layout::automatic);
    CHECK(parse_layout("dbmate") == Layout::dbmate);
    CHECK_FALSE(parse_layout("liquibase"));
    CHECK(std::string(layout_name(Layout::suffixed)) == "suffixed");
}

TEST_CASE("layouts: Flyway versions order part by part", "[migration_layouts]")
{
    CHECK(compare_versions(flyway_ledger_version("1.2.10"), flyway_ledger_version("1.2.9")) > 0);
    CHECK(compare_versions(flyway_ledger_version("1.10"), flyway_ledger_version("1.9.9")) > 0);
    CHECK(compare_versions(flyway_ledger_version("2"), flyway_ledger_version("1.999999")) > 0);
    CHECK(compare_versions(flyway_ledger_version("10"), flyway_ledger_version("9.1")) > 0);
    CHECK(compare_versions(flyway_ledger_version("1.2"), flyway_ledger_version("1.2.0")) == 0);
    CHECK(compare_versions(flyway_ledger_version("001.02"), flyway_ledger_version("1.2")) == 0);
    CHECK(flyway_ledger_version("1_2") == flyway_ledger_version("1.2"));
    CHECK(is_version(flyway_ledger_version("2026.12.05.1")));
    CHECK_THROWS_AS(flyway_ledger_version("1.2.3.4.5.6"), Error);
    CHECK_THROWS_AS(flyway_ledger_version("1.1234567"), Error);
}

TEST_CASE("layouts: a Flyway folder", "[migration_layouts]")
{
    Layout layout;
    auto set = build_migration_set({{"V1__init.sql", "CREATE TABLE a ();"},
                                    {"V1.10__Add_index.sql", "-- warden:no-transaction\nCREATE INDEX CONCURRENTLY i ON a ();"},
                                    {"U1.10__Add_index.sql", "DROP INDEX CONCURRENTLY i;"},
                                    {"V1.2__add.users.sql", ""},
                                    {"V1_3__underscored.sql", "SELECT 3;"}},
                                   Layout::automatic, &layout);
    CHECK(layout == Layout::flyway);
    REQUIRE(set.size() == 4);
    CHECK(set[0].file_version == "1");
    CHECK(set[0].name == "init");
    CHECK(set[1].file_version == "1.2");
    CHECK(set[1].name == "add.users");
    CHECK(set[2].file_version == "1.3");
    CHECK(set[3].file_version == "1.10");
    CHECK(set[3].name == "Add_index");
    CHECK_FALSE(set[3].transactional);
    CHECK(set[3].has_down);
    CHECK(set[3].down_sql == "DROP INDEX CONCURRENTLY i;");
    for (const auto& m : set)
        CHECK(is_version(m.version));
    CHECK(layout_error({{"V1__a.sql", "x"}, {"V1.0__b.sql", "y"}}) ==
          "duplicate version 1.0: \"V1.0__b.sql\" and \"V1__a.sql\"");
    CHECK(layout_error({{"U2__a.sql", "x"}}, Layout::flyway) == "down file \"U2__a.sql\" has no up file");
}

TEST_CASE("layouts: Flyway repeatable migrations", "[migration_layouts]")
{
    std::vector<RepeatableFile> repeatables;
    Layout layout;
    auto set = build_migration_set({{"V1__t.sql", "CREATE TABLE t (a int);"},
                                    {"R__views.sql", "\xEF\xBB\xBF" "CREATE OR REPLACE VIEW v AS SELECT a FROM t;"},
                                    {"R__Functions.sql", ""}},
                                   Layout::automatic, &layout, &repeatables);
    CHECK(layout == Layout::flyway);
    REQUIRE(set.size() == 1);
    REQUIRE(repeatables.size() == 2);
    CHECK(repeatables[0].name == "Functions");
    CHECK(repeatables[1].name == "views");
    CHECK(repeatables[1].sql == "CREATE OR REPLACE VIEW v AS SELECT a FROM t;");
    CHECK(repeatables[1].checksum == script_checksum(repeatables[1].sql));
}

TEST_CASE("layouts: a dbmate folder", "[migration_layouts]")
{
    auto set = build_migration_set({
        {"20151129054053_create_users.sql",
         "-- migrate:up\nCREATE TABLE users (id int);\n\n-- migrate:down\nDROP TABLE users;\n"},
        {"20151129054054_index.sql",
         "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON users (id);\n"
         "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY i;\n"},
        {"20151129054055_nothing.sql", "-- migrate:up\n\n-- migrate:down\n"},
    });
    REQUIRE(set.size() == 3);
    CHECK(detected({{"1_a.sql", "-- migrate:up\nSELECT 1;\n"}}) == Layout::dbmate);
    CHECK(set[0].up_sql == "CREATE TABLE users (id int);\n\n");
    CHECK(set[0].down_sql == "DROP TABLE users;\n");
    CHECK(set[0].checksum == script_checksum(set[0].up_sql));
    CHECK(set[0].transactional);
    CHECK(set[0].down_transactional);
    CHECK_FALSE(set[1].transactional);
    CHECK_FALSE(set[1].down_transactional);
    CHECK(set[2].up_sql == "\n");
    CHECK(set[2].has_down);
    auto npm = build_migration_set({{"1700000000001_create-widgets.sql",
                                     "-- Up Migration\nCREATE TABLE w ();\n-- Down Migration\nDROP TABLE w;\n"}});
    REQUIRE(npm.size() == 1);
    CHECK(npm[0].name == "create-widgets");
    CHECK(npm[0].up_sql == "CREATE TABLE w ();\n");
    CHECK(npm[0].down_sql == "DROP TABLE w;\n");
    CHECK(layout_error({{"1_a.sql", "SELECT 1;\n"}}, Layout::dbmate) ==
          "\"1_a.sql\" is not a dbmate migration file");
    CHECK(layout_error({{"1_a.sql", "-- migrate:down\nSELECT 2;\n-- migrate:up\nSELECT 1;\n"}}) ==
          "\"1_a.sql\": \"-- migrate:down\" comes before \"-- migrate:up\"");
}

TEST_CASE("layouts: a suffixed folder with dialects", "[migration_layouts]")
{
    Layout layout;
    auto set = build_migration_set(
        {{"20191100000001000000_identities.mysql.up.sql", "CREATE TABLE x (id int) ENGINE=InnoDB;"},
         {"20191100000001000000_identities.sqlite3.up.sql", "CREATE TABLE x (id integer);"},
         {"20191100000001000000_identities.postgres.up.sql", "CREATE TABLE x (id uuid);"},
         {"20191100000001000000_identities.up.sql", "CREATE TABLE x (id text);"},
         {"20191100000001000000_identities.down.sql", "DROP TABLE x;"},
         {"20191100000002000000_only_mysql.mysql.up.sql", "ALTER TABLE x ENGINE=InnoDB;"},
         {"20191100000003000000_idx.postgres.autocommit.up.sql", "CREATE INDEX CONCURRENTLY i ON x (id);"},
         {"20191100000003000000_idx.postgres.autocommit.down.sql", "DROP INDEX CONCURRENTLY i;"},
         {"20191100000004000000_empty.postgres.up.sql", ""},
         {"20191100000004000000_empty.postgres.down.sql", ""},
         {"V20191100000005000000.Named.up.sql", "SELECT 5;"}},
        Layout::automatic, &layout);
    CHECK(layout == Layout::suffixed);
    REQUIRE(set.size() == 4);
    CHECK(set[0].name == "identities");
    CHECK(set[0].up_sql == "CREATE TABLE x (id uuid);");
    CHECK(set[0].up_file == "20191100000001000000_identities.postgres.up.sql");
    CHECK(set[0].down_sql == "DROP TABLE x;");
    CHECK(set[1].version == "20191100000003000000");
    CHECK_FALSE(set[1].transactional);
    CHECK_FALSE(set[1].down_transactional);
    CHECK(set[2].up_sql.empty());
    CHECK(set[3].version == "20191100000005000000");
    CHECK(set[3].name == "Named");
    // Dialect-less only: the golang-migrate reading fits it too, and is the one detected.
    CHECK(detected({{"1_a.up.sql", "x"}, {"1_a.down.sql", "y"}}) == Layout::golang_migrate);
}

TEST_CASE("layouts: files that fit no layout are named", "[migration_layouts]")
{
    CHECK(layout_error({{"1_a.up.sql", "x"}, {"notes.sql", "y"}, {"V2__b.sql", "z"}}) ==
          "the files of the folder fit no migration layout; as golang-migrate these do not parse: "
          "\"notes.sql\", \"V2__b.sql\"");
    CHECK(layout_error({{"1_a.up.sql", "x"}}, Layout::flyway) == "\"1_a.up.sql\" is not a flyway migration file");
    CHECK(layout_error({{"1_a.sql", "-- migrate:up\nx"}, {"2_b.sql", "y"}}, Layout::golang_migrate) ==
          "\"1_a.sql\" is not a golang-migrate migration file");
    CHECK(layout_error({{"R__views.sql", "x"}}) == "\"R__views.sql\" is a repeatable migration, not read here");
    CHECK(detected({}) == Layout::golang_migrate);
    CHECK(detected({{"V0001.Init.up.sql", "x"}, {"V0001.Init.down.sql", "y"}}) == Layout::suffixed);
    CHECK(detected({{"README.md", ""}}) == Layout::golang_migrate);
}
