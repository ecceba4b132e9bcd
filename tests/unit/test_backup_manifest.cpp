#include <catch2/catch.hpp>

#include "backup_manifest.hpp"
#include "checksum.hpp"
#include "error.hpp"
#include "lsn.hpp"

using namespace warden;

namespace {
// Builds a manifest the way PostgreSQL 15 lays it out, with a correct checksum.
std::string make_manifest(const std::string& files_json)
{
    std::string body = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n" +
                       files_json +
                       "\n],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": "
                       "\"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n";
    return body + "\"Manifest-Checksum\": \"" + sha256_hex(body) + "\"}\n";
}

const std::string kFiles =
    "{ \"Path\": \"backup_label\", \"Size\": 225, \"Last-Modified\": \"2026-11-23 03:00:00 "
    "GMT\", \"Checksum-Algorithm\": \"SHA256\", \"Checksum\": "
    "\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\" },\n"
    "{ \"Encoded-Path\": \"676c6f62616c2f7067ff\", \"Size\": 8192, \"Last-Modified\": "
    "\"2026-11-23 03:00:00 GMT\", \"Checksum-Algorithm\": \"NONE\" }";
}  // namespace

TEST_CASE("a PostgreSQL 15 manifest parses and files are found", "[backup_manifest]")
{
    auto m = BackupManifest::parse(make_manifest(kFiles));
    REQUIRE(m.version() == 1);
    REQUIRE(m.files().size() == 2);
    const ManifestFile* label = m.find("backup_label");
    REQUIRE(label != nullptr);
    REQUIRE(label->size == 225);
    REQUIRE(label->checksum_algorithm == "SHA256");
    // Checksums are compared in lowercase hex, as core/checksum.hpp produces them.
    REQUIRE(label->checksum == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    REQUIRE(m.find("global/pg\xff") != nullptr);
    REQUIRE(m.find("PG_VERSION") == nullptr);
    REQUIRE(m.wal_ranges().size() == 1);
    REQUIRE(m.wal_ranges()[0].start_lsn == parse_lsn("0/2000028"));
}

TEST_CASE("a changed manifest fails its own checksum", "[backup_manifest]")
{
    std::string text = make_manifest(kFiles);
    text.replace(text.find("225"), 3, "226");
    REQUIRE_THROWS_WITH(BackupManifest::parse(text), Catch::Contains("checksum mismatch"));
}

TEST_CASE("a truncated or malformed manifest is refused", "[backup_manifest]")
{
    std::string text = make_manifest(kFiles);
    REQUIRE_THROWS_AS(BackupManifest::parse(text.substr(0, text.size() / 2)), Error);
    REQUIRE_THROWS_AS(BackupManifest::parse("[]"), Error);
    std::string no_sum = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": []\n}\n";
    REQUIRE_THROWS_WITH(BackupManifest::parse(no_sum), Catch::Contains("Manifest-Checksum"));
}

TEST_CASE("duplicate paths are refused", "[backup_manifest]")
{
    std::string dup = "{ \"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": \"NONE\" },\n"
                      "{ \"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": \"NONE\" }";
    REQUIRE_THROWS_WITH(BackupManifest::parse(make_manifest(dup)), Catch::Contains("duplicate"));
}

TEST_CASE("paths that could leave the data directory are refused", "[backup_manifest]")
{
    for (const char* path : {"../outside", "/etc/passwd", "base/../../x", "./global/pg_control", "global//pg_control"}) {
        std::string entry = std::string("{ \"Path\": \"") + path + "\", \"Size\": 1, \"Checksum-Algorithm\": \"NONE\" }";
        REQUIRE_THROWS_WITH(BackupManifest::parse(make_manifest(entry)), Catch::Contains(path));
    }
    // "global/pg\0": a NUL cannot be part of a file name.
    std::string nul = "{ \"Encoded-Path\": \"676c6f62616c2f706700\", \"Size\": 1, \"Checksum-Algorithm\": \"NONE\" }";
    REQUIRE_THROWS_WITH(BackupManifest::parse(make_manifest(nul)), Catch::Contains("NUL"));
}

TEST_CASE("a negative size is refused", "[backup_manifest]")
{
    std::string entry = "{ \"Path\": \"a\", \"Size\": -1, \"Checksum-Algorithm\": \"NONE\" }";
    REQUIRE_THROWS_WITH(BackupManifest::parse(make_manifest(entry)), Catch::Contains("non-negative"));
}

TEST_CASE("LSNs parse, format and name WAL segments", "[lsn]")
{
    REQUIRE(parse_lsn("16/B374D848") == 0x16B374D848ULL);
    REQUIRE(format_lsn(0x16B374D848ULL) == "16/B374D848");
    REQUIRE(format_lsn(0) == "0/0");
    REQUIRE_THROWS_AS(parse_lsn("16B374D848"), Error);
    REQUIRE_THROWS_AS(parse_lsn("1/xyz"), Error);
    REQUIRE_THROWS_AS(parse_lsn("/1"), Error);
    REQUIRE(wal_segment_name(1, parse_lsn("0/2000028"), 16 * 1024 * 1024) ==
            "000000010000000000000002");
    REQUIRE(wal_segment_name(3, parse_lsn("1/FF000000"), 16 * 1024 * 1024) ==
            "0000000300000001000000FF");
    // An LSN comparison is numeric: 0/A0000000 is after 0/9FFFFFFF although "9" > "A"
    // would not sort that way as text in every locale.
    REQUIRE(parse_lsn("0/A0000000") > parse_lsn("0/9FFFFFFF"));
}
