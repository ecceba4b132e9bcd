#include <catch2/catch.hpp>

#include <algorithm>

#include "error.hpp"
#include "wal_names.hpp"

using namespace warden::wal;

static constexpr std::uint64_t k16M = kDefaultSegmentSize;

TEST_CASE("wal: LSNs parse and format as the server writes them", "[wal]")
{
    REQUIRE(parse_lsn("0/16B3748") == 0x16B3748ULL);
    REQUIRE(parse_lsn("16/B374D848") == 0x16B374D848ULL);
    REQUIRE(parse_lsn("ff/ffffffff") == 0xFFFFFFFFFFULL);
    REQUIRE(format_lsn(0x16B374D848ULL) == "16/B374D848");
    REQUIRE(format_lsn(0) == "0/0");
    REQUIRE_THROWS_AS(parse_lsn("16B374D848"), warden::Error);
    REQUIRE_THROWS_AS(parse_lsn("0/"), warden::Error);
    REQUIRE_THROWS_AS(parse_lsn("/1"), warden::Error);
    REQUIRE_THROWS_AS(parse_lsn("0/XYZ"), warden::Error);
    REQUIRE_THROWS_AS(parse_lsn("0/123456789"), warden::Error);
}

TEST_CASE("wal: segment names split the segment number per 4 GiB", "[wal]")
{
    REQUIRE(segment_name(1, 1, k16M) == "000000010000000000000001");
    REQUIRE(segment_name(1, 0xFF, k16M) == "0000000100000000000000FF");
    REQUIRE(segment_name(1, 0x100, k16M) == "000000010000000100000000");
    REQUIRE(segment_name(0x2A, segment_of(0x16B374D848ULL, k16M), k16M) ==
            "0000002A00000016000000B3");
    // 64 MB segments: 64 segments per 4 GiB.
    REQUIRE(segment_name(1, 64, 64ULL << 20) == "000000010000000100000000");

    auto id = parse_segment_name("0000002A00000016000000B3", k16M);
    REQUIRE(id);
    REQUIRE(id->tli == 0x2A);
    REQUIRE(id->segno == 0x16B3);
    REQUIRE(segment_start(id->segno, k16M) == 0x16B3000000ULL);
    REQUIRE_FALSE(parse_segment_name("000000010000000000000100", k16M));  // low part too big
    REQUIRE_FALSE(parse_segment_name("000000000000000000000001", k16M));  // timeline 0
    REQUIRE_FALSE(parse_segment_name("00000001000000000000000g", k16M));
}

TEST_CASE("wal: file kinds in pg_wal and the archive", "[wal]")
{
    REQUIRE(classify("000000010000000000000003") == FileKind::segment);
    REQUIRE(classify("000000010000000000000003.partial") == FileKind::partial_segment);
    REQUIRE(classify("00000002.history") == FileKind::history);
    REQUIRE(classify("000000010000000000000003.00000028.backup") == FileKind::backup_label);
    REQUIRE(classify("00000001000000000000000a") == FileKind::other);  // server uses upper case
    REQUIRE(classify("RECOVERYHISTORY") == FileKind::other);
    REQUIRE(classify("../../etc/passwd") == FileKind::other);
    REQUIRE(history_name(0x1F) == "0000001F.history");
    REQUIRE(parse_history_name("0000001F.history") == 0x1FU);
    REQUIRE_FALSE(parse_history_name("0000001F.histor"));
}

TEST_CASE("wal: timeline history files", "[wal]")
{
    const char* text = "1\t0/3000158\tno recovery target specified\n"
                       "\n"
                       "# a comment\n"
                       "2\t0/5A00000\tbefore 2026-11-23 03:00:00+00\n";
    auto h = parse_history(text);
    REQUIRE(h.size() == 2);
    REQUIRE(h[0].tli == 1);
    REQUIRE(h[0].end == 0x3000158ULL);
    REQUIRE(h[0].reason == "no recovery target specified");
    REQUIRE(h[1].tli == 2);
    REQUIRE(h[1].end == 0x5A00000ULL);

    REQUIRE_THROWS_AS(parse_history("2\t0/1\tx\n1\t0/2\ty\n"), warden::Error);
    REQUIRE_THROWS_AS(parse_history("one\t0/1\tx\n"), warden::Error);
    REQUIRE_THROWS_AS(parse_history("1\tnowhere\tx\n"), warden::Error);
    REQUIRE(parse_history("").empty());
}

TEST_CASE("wal: recovery reads the switch segment from the new timeline", "[wal]")
{
    auto chain = timeline_chain(3, parse_history("1\t0/3000158\tx\n2\t0/5000000\ty\n"));
    REQUIRE(chain.size() == 3);
    REQUIRE(chain[1].tli == 2);
    REQUIRE(chain[1].begin == 0x3000158ULL);
    REQUIRE(chain[1].end == 0x5000000ULL);
    REQUIRE(timeline_for_segment(chain, 2, k16M) == 1);
    REQUIRE(timeline_for_segment(chain, 3, k16M) == 2);  // holds the switch point
    REQUIRE(timeline_for_segment(chain, 4, k16M) == 2);
    REQUIRE(timeline_for_segment(chain, 5, k16M) == 3);  // switch exactly at a boundary
    REQUIRE(timeline_for_segment(chain, 9, k16M) == 3);
}

TEST_CASE("wal: the first missing segment along a timeline chain", "[wal]")
{
    auto chain = timeline_chain(2, parse_history("1\t0/3000158\tx\n"));
    std::vector<SegmentId> present = {{1, 1}, {1, 2}, {1, 3}, {2, 3}, {2, 4}, {2, 5}};
    std::sort(present.begin(), present.end());
    REQUIRE_FALSE(first_missing_segment(chain, 0x1000028, 5, present, k16M));

    // The old timeline's copy of the switch segment is not what recovery reads.
    std::vector<SegmentId> no_new_switch = {{1, 1}, {1, 2}, {1, 3}, {2, 4}, {2, 5}};
    std::sort(no_new_switch.begin(), no_new_switch.end());
    auto miss = first_missing_segment(chain, 0x1000028, 5, no_new_switch, k16M);
    REQUIRE(miss);
    REQUIRE(*miss == SegmentId{2, 3});

    std::vector<SegmentId> hole = {{1, 1}, {2, 3}, {2, 4}, {2, 5}};
    std::sort(hole.begin(), hole.end());
    miss = first_missing_segment(chain, 0x1000028, 5, hole, k16M);
    REQUIRE(miss);
    REQUIRE(*miss == SegmentId{1, 2});
}

TEST_CASE("wal: segment sizes are PostgreSQL's powers of two from 1 MB to 1 GB", "[wal]")
{
    REQUIRE(valid_segment_size(1ULL << 20));
    REQUIRE(valid_segment_size(k16M));
    REQUIRE(valid_segment_size(1ULL << 30));
    REQUIRE_FALSE(valid_segment_size(0));
    REQUIRE_FALSE(valid_segment_size(3));
    REQUIRE_FALSE(valid_segment_size(1ULL << 19));
    REQUIRE_FALSE(valid_segment_size(1ULL << 31));
    REQUIRE_FALSE(valid_segment_size(1ULL << 40));
    REQUIRE_FALSE(valid_segment_size(k16M + 1));
    REQUIRE_THROWS_WITH(check_segment_size(0, "archive.json"),
                        Catch::Contains("archive.json: invalid WAL segment size 0"));
    // Every function that divides by the size refuses a bad one instead of trapping (SIGFPE).
    REQUIRE_THROWS_AS(segment_name(1, 1, 0), warden::Error);
    REQUIRE_THROWS_AS(parse_segment_name("000000010000000000000001", 0), warden::Error);
    REQUIRE_THROWS_AS(parse_segment_name("000000010000000000000001", 3), warden::Error);
    auto chain = timeline_chain(1, {});
    REQUIRE_THROWS_AS(timeline_for_segment(chain, 1, 0), warden::Error);
    REQUIRE_THROWS_AS(first_missing_segment(chain, 0, 1, {}, 0), warden::Error);
}

TEST_CASE("a backup history file's name gives the backup's start")
{
    auto start = backup_history_start("000000020000000100000003.00000028.backup", kDefaultSegmentSize);
    REQUIRE(start);
    CHECK(start->first == 2u);
    CHECK(format_lsn(start->second) == "1/3000028");
    // 64 MB segments: the offset may reach 64 MB.
    auto big = backup_history_start("000000010000000000000001.03000000.backup", 64u << 20);
    REQUIRE(big);
    CHECK(format_lsn(big->second) == "0/7000000");
    CHECK_FALSE(backup_history_start("000000010000000000000001.01000000.backup", kDefaultSegmentSize));
    CHECK_FALSE(backup_history_start("000000010000000000000001", kDefaultSegmentSize));
    CHECK_FALSE(backup_history_start("00000001.history", kDefaultSegmentSize));
}
