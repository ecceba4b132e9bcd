#include <catch2/catch.hpp>

#include "backup_paths.hpp"

using namespace warden;

TEST_CASE("member paths as BASE_BACKUP writes them are accepted", "[backup_paths]")
{
    REQUIRE(member_path_problem("global/pg_control").empty());
    REQUIRE(member_path_problem("PG_VERSION").empty());
    REQUIRE(member_path_problem("base/1/1259").empty());
    REQUIRE(member_path_problem("PG_15_202209061/16384/16385").empty());
    // A name that merely contains dots is a name.
    REQUIRE(member_path_problem("a..b/.hidden/...").empty());
}

TEST_CASE("member paths that could leave the target or alias another are refused", "[backup_paths]")
{
    REQUIRE(member_path_problem("") == "is empty");
    REQUIRE(member_path_problem("/etc/passwd") == "is an absolute path");
    REQUIRE(member_path_problem("../x") == "has a \"..\" component");
    REQUIRE(member_path_problem("base/../../x") == "has a \"..\" component");
    REQUIRE(member_path_problem("base/..") == "has a \"..\" component");
    REQUIRE(member_path_problem("./global") == "is not canonical (a \".\" component)");
    REQUIRE(member_path_problem("global/.") == "is not canonical (a \".\" component)");
    REQUIRE(member_path_problem("global//pg_control") == "is not canonical (an empty component)");
    REQUIRE(member_path_problem("global/") == "is not canonical (an empty component)");
    REQUIRE(member_path_problem(std::string("a\0b", 3)) == "holds a NUL byte");
    REQUIRE(member_path_problem(std::string(4097, 'a')) == "is longer than 4096 bytes");
}

TEST_CASE("tablespace OIDs are numbers", "[backup_paths]")
{
    REQUIRE(tablespace_oid_problem("16384").empty());
    REQUIRE(tablespace_oid_problem("1").empty());
    REQUIRE(tablespace_oid_problem("4294967295").empty());
    for (const char* bad : {"", "0", "016384", "4294967296", "99999999999", "-1", "16384 ", "../../outside/planted_link",
                            "1/2", "0x10"})
        REQUIRE_FALSE(tablespace_oid_problem(bad).empty());
}

TEST_CASE("tablespace locations are canonical absolute paths", "[backup_paths]")
{
    REQUIRE(location_problem("/srv/pg/ts").empty());
    REQUIRE(location_problem("/ts").empty());
    REQUIRE(location_problem("relative/ts") == "is not an absolute path");
    REQUIRE(location_problem("") == "is not an absolute path");
    REQUIRE(location_problem("/") == "is the root directory");
    REQUIRE(location_problem("/srv/../etc") == "has a \"..\" component");
    REQUIRE(location_problem("/srv/./ts") == "is not canonical (a \".\" component)");
    REQUIRE(location_problem("/srv//ts") == "is not canonical (an empty component)");
    REQUIRE(location_problem("/srv/ts/") == "is not canonical (an empty component)");
}

TEST_CASE("path_within compares whole components", "[backup_paths]")
{
    REQUIRE(path_within("/srv/pg/data", "/srv/pg/data"));
    REQUIRE(path_within("/srv/pg/data/ts", "/srv/pg/data"));
    REQUIRE_FALSE(path_within("/srv/pg/data2", "/srv/pg/data"));
    REQUIRE_FALSE(path_within("/srv/pg", "/srv/pg/data"));
    REQUIRE(path_within("/anything", "/"));
}

TEST_CASE("archive names are STEM.tar with a known compression", "[backup_paths]")
{
    REQUIRE(is_archive_name("base.tar", "base"));
    REQUIRE(is_archive_name("base.tar.gz", "base"));
    REQUIRE(is_archive_name("16384.tar.zst", "16384"));
    REQUIRE_FALSE(is_archive_name("base.tar.xz", "base"));
    REQUIRE_FALSE(is_archive_name("../base.tar", "base"));
    REQUIRE_FALSE(is_archive_name("16384.tar", "1638"));
}

TEST_CASE("printable keeps a reason on one line", "[backup_paths]")
{
    REQUIRE(printable("base/1/1259") == "base/1/1259");
    REQUIRE(printable("a\nb\x7f") == "a\\x0ab\\x7f");
}
