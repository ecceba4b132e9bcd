#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "checksum.hpp"
#include "error.hpp"
#include "migration_files.hpp"

using namespace warden;

TEST_CASE("ledger: migration file names", "[migration_files]")
{
    auto up = parse_migration_file_name("001_create_users.up.sql");
    REQUIRE(up);
    CHECK(up->version == "001");
    CHECK(up->name == "create_users");
    CHECK(up->kind == ScriptKind::up);
    auto down = parse_migration_file_name("20261123025500_add-index.down.sql");
    REQUIRE(down);
    CHECK(down->version == "20261123025500");
    CHECK(down->kind == ScriptKind::down);
    auto plain = parse_migration_file_name("7_x.sql");
    REQUIRE(plain);
    CHECK(plain->kind == ScriptKind::plain);

    CHECK_FALSE(parse_migration_file_name("README.md"));
    CHECK_FALSE(parse_migration_file_name("create_users.sql"));
    CHECK_FALSE(parse_migration_file_name("001.sql"));
    CHECK_FALSE(parse_migration_file_name("001_.sql"));
    CHECK_FALSE(parse_migration_file_name("v1_x.sql"));
    CHECK_FALSE(parse_migration_file_name("001_a.b.sql"));
    CHECK_FALSE(parse_migration_file_name("001_a b.sql"));
}

TEST_CASE("ledger: versions compare as numbers", "[migration_files]")
{
    CHECK(compare_versions("2", "10") < 0);
    CHECK(compare_versions("10", "2") > 0);
    CHECK(compare_versions("001", "1") == 0);
    CHECK(version_key("007") == "7");
    CHECK(version_key("000") == "0");
    CHECK(version_key("20261123031500") == "20261123031500");
    CHECK(compare_versions("009", "010") < 0);
    CHECK(compare_versions("999", "20261123025500") < 0);
    CHECK(compare_versions("0", "000") == 0);
    CHECK(is_version("0123"));
    CHECK_FALSE(is_version(""));
    CHECK_FALSE(is_version("1a"));
}

TEST_CASE("ledger: directives in the first lines", "[migration_files]")
{
    CHECK_FALSE(parse_directives("CREATE TABLE t ();\n").no_transaction);
    CHECK(parse_directives("-- warden:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n")
              .no_transaction);
    CHECK(parse_directives("\xEF\xBB\xBF-- a comment\r\n\r\n--warden:no-transaction  \r\nSELECT 1;")
              .no_transaction);
    // After the first statement it is an ordinary comment.
    CHECK_FALSE(parse_directives("SELECT 1;\n-- warden:no-transaction\n").no_transaction);
    REQUIRE_THROWS_AS(parse_directives("-- warden:no-transactoin\nSELECT 1;", "004_x.sql"), Error);
    try {
        parse_directives("--\n-- warden:retries=3\n", "004_x.sql");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(std::string(e.what()) == "004_x.sql, line 2: unknown directive \"-- warden:retries=3\"");
        CHECK(e.sqlstate() == "22023");
    }
}

TEST_CASE("ledger: UTF-8 validation", "[migration_files]")
{
    CHECK(is_valid_utf8("plain"));
    CHECK(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
    CHECK_FALSE(is_valid_utf8("caf\xE9"));
    CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
    CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
    CHECK_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
}

static std::string error_of(const std::vector<ScriptFile>& files)
{
    try {
        build_migration_set(files);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST_CASE("ledger: a folder becomes an ordered migration set", "[migration_files]")
{
    auto set = build_migration_set({
        {"10_ten.sql", "SELECT 10;\n"},
        {"2_two.up.sql", "-- warden:no-transaction\nSELECT 2;\n"},
        {"2_two.down.sql", "SELECT -2;\n"},
        {"notes.txt", ""},
        {"20261123025500_stamp.up.sql", "SELECT 3;\r\n"},
    });
    REQUIRE(set.size() == 3);
    CHECK(set[0].version == "2");
    CHECK(set[0].has_down);
    CHECK(set[0].down_sql == "SELECT -2;\n");
    CHECK_FALSE(set[0].transactional);
    CHECK(set[1].version == "10");
    CHECK_FALSE(set[1].has_down);
    CHECK(set[1].transactional);
    CHECK(set[2].version == "20261123025500");
    CHECK(set[2].checksum == script_checksum("SELECT 3;\n"));
}

TEST_CASE("ledger: bad folders are refused with the file named", "[migration_files]")
{
    CHECK(error_of({{"1_a.sql", "x"}, {"001_b.sql", "y"}}) ==
          "duplicate version 001: \"001_b.sql\" and \"1_a.sql\"");
    CHECK(error_of({{"1_a.up.sql", "x"}, {"1_a.sql", "y"}}) ==
          "duplicate version 1: \"1_a.sql\" and \"1_a.up.sql\"");
    CHECK(error_of({{"3_a.down.sql", "x"}}) == "down file \"3_a.down.sql\" has no up file");
    CHECK(error_of({{"3_a.down.sql", "x"}, {"3_b.up.sql", "y"}}) ==
          "duplicate version 3: \"3_b.up.sql\" and \"3_a.down.sql\"");
    CHECK(error_of({{"4_a.sql", "SELECT '\xE9';"}}) == "\"4_a.sql\" is not valid UTF-8");
    CHECK(error_of({{"create.sql", "SELECT 1;"}}) == "\"create.sql\" is not a migration file name");
    CHECK(error_of({{"5_a.sql", "-- warden:transaction\nSELECT 1;"}}) ==
          "5_a.sql, line 1: unknown directive \"-- warden:transaction\"");
}

TEST_CASE("ledger: empty and comment-only files are no-op migrations", "[migration_files]")
{
    auto set = build_migration_set({{"4_a.sql", " \n\t\n"},
                                    {"5_b.up.sql", "-- nothing to do\n"},
                                    {"5_b.down.sql", ""}});
    REQUIRE(set.size() == 2);
    CHECK(set[0].up_sql == " \n\t\n");
    CHECK(set[0].checksum == script_checksum(" \n\t\n"));
    CHECK(set[1].has_down);
    CHECK(set[1].down_sql.empty());
}

TEST_CASE("ledger: a byte-order mark is not sent to the server", "[migration_files]")
{
    auto set = build_migration_set({{"1_a.up.sql", "\xEF\xBB\xBF" "CREATE TABLE a ();\n"},
                                    {"1_a.down.sql", "\xEF\xBB\xBF" "DROP TABLE a;\n"}});
    REQUIRE(set.size() == 1);
    CHECK(set[0].up_sql == "CREATE TABLE a ();\n");
    CHECK(set[0].down_sql == "DROP TABLE a;\n");
    CHECK(set[0].checksum == script_checksum(set[0].up_sql));
    CHECK(set[0].checksum == script_checksum("\xEF\xBB\xBF" "CREATE TABLE a ();\n"));
}

TEST_CASE("ledger: CRLF and LF files get one checksum, a changed byte another", "[migration_files]")
{
    auto lf = build_migration_set({{"1_a.sql", "CREATE TABLE a (id int);\nSELECT 1;\n"}});
    auto crlf = build_migration_set({{"1_a.sql", "\xEF\xBB\xBF" "CREATE TABLE a (id int);\r\nSELECT 1;\r\n"}});
    auto edited = build_migration_set({{"1_a.sql", "CREATE TABLE a (id int);\nSELECT 2;\n"}});
    CHECK(lf[0].checksum == crlf[0].checksum);
    CHECK(lf[0].checksum != edited[0].checksum);
    CHECK(lf[0].checksum == script_checksum("CREATE TABLE a (id int);\nSELECT 1;\n"));
}

TEST_CASE("ledger: an unreadable folder is an error", "[migration_files]")
{
    REQUIRE_THROWS_AS(load_migration_dir("/nonexistent/migrations"), Error);
}

namespace {
struct MigrationTempDir {
    std::string path;
    MigrationTempDir()
    {
        char tmpl[] = "/tmp/warden_migrations_test.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~MigrationTempDir() { std::filesystem::remove_all(path); }
    void write(const std::string& name, const std::string& text) const
    {
        std::ofstream(path + "/" + name) << text;
    }
};
}  // namespace

TEST_CASE("ledger: a symlink that leaves the folder is refused unless followed", "[migration_files]")
{
    MigrationTempDir tmp;
    std::filesystem::create_directory(tmp.path + "/migrations");
    std::string dir = tmp.path + "/migrations";
    tmp.write("secret.sql", "SELECT 'outside';\n");
    tmp.write("migrations/1_a.sql", "SELECT 1;\n");
    tmp.write("migrations/shared.sql.txt", "SELECT 2;\n");
    // A link inside the folder is the folder's own content.
    std::filesystem::create_symlink("shared.sql.txt", dir + "/2_b.sql");
    std::filesystem::create_symlink(tmp.path + "/secret.sql", dir + "/3_c.sql");
    REQUIRE_THROWS_WITH(load_migration_dir(dir),
                        Catch::Contains("\"3_c.sql\" is a symbolic link to \"") &&
                            Catch::Contains("outside the migration folder"));
    auto set = load_migration_dir(dir, true);
    REQUIRE(set.size() == 3);
    REQUIRE(set[2].up_sql == "SELECT 'outside';\n");
    std::filesystem::remove(dir + "/3_c.sql");
    // A relative link climbing out is caught the same way.
    std::filesystem::create_symlink("../secret.sql", dir + "/3_c.sql");
    REQUIRE_THROWS_WITH(load_migration_dir(dir), Catch::Contains("outside the migration folder"));
    std::filesystem::remove(dir + "/3_c.sql");
    set = load_migration_dir(dir);
    REQUIRE(set.size() == 2);
    REQUIRE(set[1].up_sql == "SELECT 2;\n");
}
