#include <catch2/catch.hpp>

#include <map>

#include "backup_catalog.hpp"
#include "error.hpp"
#include "retention.hpp"

using namespace warden;

namespace {
const std::time_t kNow = 1800000000;  // 2027-01-15

BackupInfo backup(const std::string& id, const std::string& lsn, std::time_t finished,
                  const std::string& sysid = "7001")
{
    BackupInfo b;
    b.id = id;
    b.kind = "physical";
    b.stop_lsn = lsn;
    b.finished_at = iso8601_utc(finished);
    b.timeline = 1;
    b.system_identifier = sysid;
    return b;
}

std::map<std::string, RetentionDecision> by_id(const std::vector<RetentionDecision>& ds)
{
    std::map<std::string, RetentionDecision> m;
    for (const auto& d : ds)
        m[d.id] = d;
    return m;
}

RetentionPolicy keep_last(int n)
{
    RetentionPolicy p;
    p.keep_last = n;
    p.now = kNow;
    return p;
}
}  // namespace

TEST_CASE("keep-last keeps the newest by LSN, not by name", "[retention]")
{
    // IDs sort opposite to the real order: a clock set back would do that.
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "0/9FFFFFFF", kNow - 3 * 86400),
        backup("20260101T000000Z", "0/A0000000", kNow - 2 * 86400),
        backup("20250101T000000Z", "1/0", kNow - 1 * 86400),
    };
    auto d = by_id(decide_retention(bs, keep_last(2)));
    REQUIRE(d["20250101T000000Z"].keep);
    REQUIRE(d["20260101T000000Z"].keep);
    REQUIRE_FALSE(d["20270101T000000Z"].keep);
    REQUIRE_THAT(d["20270101T000000Z"].reason, Catch::Contains("older than the newest 2"));
    REQUIRE_THAT(d["20250101T000000Z"].reason, Catch::Contains("number 1"));
}

TEST_CASE("keep-days keeps anything younger", "[retention]")
{
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "0/1000000", kNow - 10 * 86400),
        backup("20270102T000000Z", "0/2000000", kNow - 5 * 86400),
        backup("20270103T000000Z", "0/3000000", kNow - 1 * 86400),
    };
    RetentionPolicy p = keep_last(1);
    p.keep_days = 7;
    auto d = by_id(decide_retention(bs, p));
    REQUIRE(d["20270103T000000Z"].keep);
    REQUIRE(d["20270102T000000Z"].keep);
    REQUIRE_THAT(d["20270102T000000Z"].reason, Catch::Contains("younger than 7 days"));
    REQUIRE_FALSE(d["20270101T000000Z"].keep);
    REQUIRE_THAT(d["20270101T000000Z"].reason, Catch::Contains("older than 7 days"));
}

TEST_CASE("the newest verified backup is never deleted", "[retention]")
{
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "0/1000000", kNow - 30 * 86400),
        backup("20270102T000000Z", "0/2000000", kNow - 20 * 86400),
        backup("20270103T000000Z", "0/3000000", kNow - 10 * 86400),
    };
    bs[0].verify_ok = true;
    bs[1].verify_ok = true;
    auto d = by_id(decide_retention(bs, keep_last(1)));
    REQUIRE(d["20270103T000000Z"].keep);
    REQUIRE(d["20270102T000000Z"].keep);
    REQUIRE_THAT(d["20270102T000000Z"].reason, Catch::Contains("newest verified"));
    REQUIRE_FALSE(d["20270101T000000Z"].keep);
}

TEST_CASE("a failed verification does not count towards keep-last", "[retention]")
{
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "0/1000000", kNow - 30 * 86400),
        backup("20270102T000000Z", "0/2000000", kNow - 20 * 86400),
    };
    bs[1].verify_ok = false;
    auto d = by_id(decide_retention(bs, keep_last(1)));
    REQUIRE(d["20270101T000000Z"].keep);
    REQUIRE_FALSE(d["20270102T000000Z"].keep);
    REQUIRE_THAT(d["20270102T000000Z"].reason, Catch::Contains("verification failed"));
}

TEST_CASE("backups of another system are kept", "[retention]")
{
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "5/0", kNow - 30 * 86400, "6999"),
        backup("20270102T000000Z", "0/2000000", kNow - 20 * 86400),
        backup("20270103T000000Z", "0/3000000", kNow - 10 * 86400),
    };
    auto d = by_id(decide_retention(bs, keep_last(1)));
    REQUIRE(d["20270101T000000Z"].keep);
    REQUIRE_THAT(d["20270101T000000Z"].reason, Catch::Contains("system identifier 6999"));
    REQUIRE_FALSE(d["20270102T000000Z"].keep);
    REQUIRE(d["20270103T000000Z"].keep);

    // Naming the other system prunes that one instead.
    RetentionPolicy p = keep_last(1);
    p.system_identifier = "6999";
    auto e = by_id(decide_retention(bs, p));
    REQUIRE(e["20270101T000000Z"].keep);  // newest of its own series
    REQUIRE(e["20270102T000000Z"].keep);
}

TEST_CASE("a newer timeline outranks a higher LSN of an older timeline", "[retention]")
{
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "9/0", kNow - 30 * 86400),
        backup("20270102T000000Z", "2/0", kNow - 20 * 86400),
    };
    bs[1].timeline = 2;
    auto d = by_id(decide_retention(bs, keep_last(1)));
    REQUIRE(d["20270102T000000Z"].keep);
    REQUIRE_FALSE(d["20270101T000000Z"].keep);
}

TEST_CASE("logical and physical backups are separate series", "[retention]")
{
    std::vector<BackupInfo> bs = {
        backup("20270101T000000Z", "0/1000000", kNow - 30 * 86400),
        backup("20270102T000000Z", "0/2000000", kNow - 20 * 86400),
    };
    bs[0].kind = "logical";
    bs[0].database = "app";
    auto d = by_id(decide_retention(bs, keep_last(1)));
    REQUIRE(d["20270101T000000Z"].keep);
    REQUIRE(d["20270102T000000Z"].keep);
}

TEST_CASE("bad policies and unreadable backups prune nothing", "[retention]")
{
    std::vector<BackupInfo> bs = {backup("20270101T000000Z", "0/1000000", kNow)};
    REQUIRE_THROWS_AS(decide_retention(bs, keep_last(0)), Error);
    bs[0].stop_lsn = "garbage";
    REQUIRE_THROWS_WITH(decide_retention(bs, keep_last(1)), Catch::Contains("stop LSN"));
}
