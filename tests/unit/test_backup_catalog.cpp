#include <catch2/catch.hpp>

#include "backup_catalog.hpp"
#include "error.hpp"

using namespace warden;

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

TEST_CASE("a backup.json that names another folder is not trusted", "[backup_catalog]")
{
    std::string text = to_json_text(sample("20261123T020000Z"));
    REQUIRE(description_for_folder("20261123T020000Z", text).label == "nightly");
    REQUIRE_THROWS_WITH(description_for_folder("20261123T030000Z", text),
                        Catch::Contains("names backup 20261123T020000Z, not its folder"));
    REQUIRE_THROWS_WITH(description_for_folder("20261123T030000Z", "{\"format\": 1,"),
                        Catch::Contains("unreadable backup.json"));
}

TEST_CASE("a listing is sorted by finish time, then ID", "[backup_catalog]")
{
    CatalogListing l;
    l.backups = {sample("20261123T030000Z-2"), sample("20261123T030000Z"), sample("20261122T030000Z")};
    l.backups[2].finished_at = "2026-11-24T00:00:00Z";
    l.unusable = {{"b", "x"}, {"a", "y"}};
    sort_listing(l);
    REQUIRE(l.backups[0].id == "20261123T030000Z");
    REQUIRE(l.backups[1].id == "20261123T030000Z-2");
    REQUIRE(l.backups[2].id == "20261122T030000Z");
    REQUIRE(l.unusable[0].first == "a");
}
