#include <catch2/catch.hpp>

#include "error.hpp"
#include "wal_retention.hpp"

using namespace warden::wal;

static constexpr std::uint64_t k16M = kDefaultSegmentSize;

TEST_CASE("wal: prune keeps everything without a kept backup", "[wal]")
{
    auto plan = plan_wal_prune({"000000010000000000000001.zst", "000000010000000000000001.zst.sha256"}, {}, k16M);
    REQUIRE(plan.ranges.empty());
    REQUIRE(plan.keep_reason.find("no physical backup") != std::string::npos);
}

TEST_CASE("wal: prune removes only what precedes the oldest kept backup", "[wal]")
{
    std::vector<std::string> stored;
    for (int s = 1; s <= 7; ++s) {
        std::string n = segment_name(1, s, k16M) + ".zst";
        stored.push_back(n);
        stored.push_back(n + ".sha256");
    }
    stored.push_back("000000010000000000000002.00000028.backup");
    stored.push_back("000000010000000000000002.00000028.backup.sha256");
    stored.push_back("000000010000000000000005.00000060.backup");
    stored.push_back("00000002.history");
    stored.push_back("000000010000000000000008.partial");  // live: never
    stored.push_back("000000010000000000000003.zst.conflict-0123456789ab");
    stored.push_back("archive.json");

    // Two kept backups; the older starts in segment 5 (0/5000060).
    auto plan = plan_wal_prune(stored, {{"b2", 1, 0x7000028}, {"b1", 1, 0x5000060}}, k16M);
    REQUIRE(plan.ranges.size() == 1);
    const auto& r = plan.ranges[0];
    REQUIRE(r.first == "000000010000000000000001");
    REQUIRE(r.last == "000000010000000000000004");
    REQUIRE(r.reason.find("b1") != std::string::npos);
    // Segments 1-4 with checksums, the old backup history file, the conflict copy.
    REQUIRE(r.files.size() == 8 + 2 + 1);
    for (const auto& f : r.files) {
        REQUIRE(f.find("000000010000000000000005") == std::string::npos);
        REQUIRE(f != "00000002.history");
    }
}

TEST_CASE("wal: prune ranges split per timeline and at holes", "[wal]")
{
    std::vector<std::string> stored = {
        "000000010000000000000001.zst", "000000010000000000000002.zst",
        "000000010000000000000004.zst", "000000010000000000000004.partial.zst",
        "000000020000000000000004.zst", "000000020000000000000005.zst",
        "000000020000000000000009.zst"};
    auto plan = plan_wal_prune(stored, {{"b", 2, 0x9000000}}, k16M);
    REQUIRE(plan.ranges.size() == 3);
    REQUIRE(plan.ranges[0].first == "000000010000000000000001");
    REQUIRE(plan.ranges[0].last == "000000010000000000000002");
    REQUIRE(plan.ranges[1].first == "000000010000000000000004");
    REQUIRE(plan.ranges[1].files.size() == 2);
    REQUIRE(plan.ranges[2].first == "000000020000000000000004");
    REQUIRE(plan.ranges[2].last == "000000020000000000000005");
}

TEST_CASE("wal: prune refuses an invalid segment size instead of dividing by it", "[wal]")
{
    std::vector<std::string> stored = {"000000010000000000000001.zst"};
    REQUIRE_THROWS_AS(plan_wal_prune(stored, {{"b", 1, 0x9000000}}, 0), warden::Error);
    REQUIRE_THROWS_AS(plan_wal_prune(stored, {}, 1ULL << 40), warden::Error);
}
