#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backup_catalog.hpp"
#include "error.hpp"

using namespace warden;
namespace fs = std::filesystem;

namespace {
BackupInfo sample(const std::string& id)
{
    BackupInfo b;
    b.id = id;
    b.kind = "physical";
    b.label = "nightly";
    b.finished_at = "2026-11-23T03:00:00Z";
    b.start_lsn = "0/2000028";
    b.stop_lsn = "0/2000100";
    b.timeline = 1;
    b.system_identifier = "7300000000000000001";
    b.compression = "gzip";
    b.compression_level = 6;
    b.original_bytes = 100;
    b.stored_bytes = 10;
    b.conninfo = "host=/tmp password=********";
    b.files.push_back({"base.tar.gz", 10, std::string(64, 'a')});
    b.wal.push_back({"000000010000000000000002", 16777216, std::string(64, 'b')});
    b.tablespaces.push_back({"16384", "/srv/ts", "16384.tar.gz"});
    return b;
}

struct TempDir {
    fs::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/warden_catalog_test.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("backup.json round-trips every field", "[backup_catalog]")
{
    BackupInfo b = sample("20261123T030000Z");
    b.verified_at = "2026-11-23T04:00:00Z";
    b.verify_ok = true;
    b.ledger_version = "009";
    b.row_counts["public.users"] = 42;
    BackupInfo c = backup_info_from_json(to_json_text(b));
    REQUIRE(c.id == b.id);
    REQUIRE(c.kind == "physical");
    REQUIRE(c.stop_lsn == "0/2000100");
    REQUIRE(c.system_identifier == b.system_identifier);
    REQUIRE(c.compression == "gzip");
    REQUIRE(c.compression_level == 6);
    REQUIRE(c.files.size() == 1);
    REQUIRE(c.wal.at(0).name == "000000010000000000000002");
    REQUIRE(c.tablespaces.at(0).location == "/srv/ts");
    REQUIRE(c.verify_ok == std::optional<bool>(true));
    REQUIRE(c.ledger_version == std::optional<std::string>("009"));
    REQUIRE(c.row_counts.at("public.users") == 42);
    REQUIRE_FALSE(c.restore_seconds.has_value());
}

TEST_CASE("backup IDs are timestamps and nothing else", "[backup_catalog]")
{
    REQUIRE(make_backup_id(0) == "19700101T000000Z");
    REQUIRE(valid_backup_id("20261123T030000Z"));
    REQUIRE(valid_backup_id("20261123T030000Z-2"));
    REQUIRE_FALSE(valid_backup_id("20261123T030000Z-"));
    REQUIRE_FALSE(valid_backup_id("../../etc"));
    REQUIRE_FALSE(valid_backup_id("20261123T030000Z/.."));
    REQUIRE_FALSE(valid_backup_id(".partial-20261123T030000Z"));
    REQUIRE(parse_iso8601_utc(iso8601_utc(1700000000)) == std::optional<std::time_t>(1700000000));
    REQUIRE_FALSE(parse_iso8601_utc("yesterday").has_value());
}

TEST_CASE("the catalog lists complete backups and names the unusable folders",
          "[backup_catalog]")
{
    TempDir dir;
    fs::create_directory(dir.path / "20261123T030000Z");
    write_description((dir.path / "20261123T030000Z").string(), sample("20261123T030000Z"));
    fs::create_directory(dir.path / ".partial-20261123T040000Z");
    fs::create_directory(dir.path / "20261123T050000Z");  // no backup.json
    fs::create_directory(dir.path / "20261123T060000Z");
    std::ofstream(dir.path / "20261123T060000Z" / "backup.json") << "{\"format\": 1,";

    CatalogListing l = load_catalog(dir.path.string());
    REQUIRE(l.backups.size() == 1);
    REQUIRE(l.backups[0].id == "20261123T030000Z");
    REQUIRE(l.unusable.size() == 3);
    REQUIRE(l.unusable[0].first == ".partial-20261123T040000Z");

    REQUIRE(load_backup(dir.path.string(), "20261123T030000Z").label == "nightly");
    REQUIRE_THROWS_WITH(load_backup(dir.path.string(), "20991231T000000Z"),
                        Catch::Contains("unknown backup ID"));
    REQUIRE_THROWS_WITH(load_backup(dir.path.string(), "../x"),
                        Catch::Contains("unknown backup ID"));
    REQUIRE_THROWS_AS(load_catalog((dir.path / "missing").string()), Error);
}

TEST_CASE("a backup.json that names another folder is not trusted", "[backup_catalog]")
{
    TempDir dir;
    fs::create_directory(dir.path / "20261123T030000Z");
    write_description((dir.path / "20261123T030000Z").string(), sample("20261123T020000Z"));
    CatalogListing l = load_catalog(dir.path.string());
    REQUIRE(l.backups.empty());
    REQUIRE(l.unusable.size() == 1);
}
