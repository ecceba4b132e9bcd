#include <catch2/catch.hpp>

#include <map>

#include "backup_catalog.hpp"
#include "backup_chain.hpp"
#include "error.hpp"
#include "retention.hpp"

using namespace warden;

namespace {
BackupInfo backup(const std::string& id, const std::string& start, const std::string& stop,
                  const std::string& parent = "", const std::string& type = "")
{
    BackupInfo b;
    b.id = id;
    b.kind = "physical";
    b.start_lsn = start;
    b.stop_lsn = stop;
    b.finished_at = "2026-12-05T07:00:00Z";
    b.timeline = 1;
    b.system_identifier = "7001";
    b.parent = parent;
    b.type = parent.empty() ? "full" : type.empty() ? "incremental" : type;
    return b;
}

std::vector<BackupInfo> chain_catalog()
{
    return {backup("20261201T000000Z", "0/1000028", "0/1000100"),
            backup("20261202T000000Z", "0/2000028", "0/2000100", "20261201T000000Z"),
            backup("20261203T000000Z", "0/3000028", "0/3000100", "20261202T000000Z"),
            backup("20261204T000000Z", "0/4000028", "0/4000100", "20261201T000000Z", "differential")};
}
}  // namespace

TEST_CASE("the parent of a new backup")
{
    auto c = chain_catalog();
    CHECK(choose_parent(c, ParentKind::latest, "").id == "20261204T000000Z");
    CHECK(choose_parent(c, ParentKind::latest_full, "").id == "20261201T000000Z");
    CHECK_THROWS_WITH(choose_parent(c, ParentKind::latest, "9999"), Catch::Contains("no physical backup"));
    c[0].verify_ok = false;
    CHECK_THROWS_WITH(choose_parent(c, ParentKind::latest_full, ""), Catch::Contains("no full physical backup"));
    BackupInfo logical = backup("20261206T000000Z", "0/5000028", "0/5000100");
    logical.kind = "logical";
    c.push_back(logical);
    CHECK(choose_parent(c, ParentKind::latest, "").id == "20261204T000000Z");
}

TEST_CASE("a restore reads the chain from the full backup up")
{
    auto c = chain_catalog();
    auto chain = resolve_chain(c, "20261203T000000Z");
    REQUIRE(chain.size() == 3);
    CHECK(chain[0]->id == "20261201T000000Z");
    CHECK(chain[2]->id == "20261203T000000Z");
    CHECK(resolve_chain(c, "20261204T000000Z").size() == 2);
    CHECK(resolve_chain(c, "20261201T000000Z").size() == 1);

    SECTION("a missing parent")
    {
        c.erase(c.begin() + 1);
        CHECK_THROWS_WITH(resolve_chain(c, "20261203T000000Z"), Catch::Contains("not in the catalog"));
    }
    SECTION("a parent of another system")
    {
        c[1].system_identifier = "7002";
        CHECK_THROWS_WITH(resolve_chain(c, "20261203T000000Z"), Catch::Contains("another system"));
    }
    SECTION("a parent on another timeline")
    {
        c[1].timeline = 2;
        CHECK_THROWS_WITH(resolve_chain(c, "20261203T000000Z"), Catch::Contains("timeline"));
    }
    SECTION("a parent that is not older")
    {
        c[1].start_lsn = "0/9000000";
        CHECK_THROWS_WITH(resolve_chain(c, "20261203T000000Z"), Catch::Contains("does not start before"));
    }
    SECTION("a loop")
    {
        c[0].parent = "20261203T000000Z";
        CHECK_THROWS_WITH(resolve_chain(c, "20261203T000000Z"), Catch::Contains("loops"));
    }
    CHECK_THROWS_WITH(resolve_chain(c, "20261209T000000Z"), Catch::Contains("unknown"));
}

TEST_CASE("retention keeps every parent a kept backup needs")
{
    auto c = chain_catalog();
    RetentionPolicy p;
    p.keep_last = 1;
    p.now = 1800000000;
    auto decisions = decide_retention(c, p);
    keep_needed_parents(c, decisions);
    std::map<std::string, RetentionDecision> d;
    for (const auto& x : decisions)
        d[x.id] = x;
    CHECK(d["20261204T000000Z"].keep);  // the newest (a differential)
    CHECK(d["20261201T000000Z"].keep);  // its full parent
    CHECK_THAT(d["20261201T000000Z"].reason, Catch::Contains("needed by kept backup 20261204T000000Z"));
    CHECK_FALSE(d["20261202T000000Z"].keep);  // the older incremental chain is not needed
    CHECK_FALSE(d["20261203T000000Z"].keep);

    SECTION("an incremental kept keeps its whole chain")
    {
        c.pop_back();
        auto ds = decide_retention(c, p);
        keep_needed_parents(c, ds);
        for (const auto& x : ds)
            CHECK(x.keep);
    }
}

TEST_CASE("backup.json records the type and the parent")
{
    BackupInfo b = chain_catalog()[1];
    b.label = "x";
    b.compression = "gzip";
    BackupInfo back = backup_info_from_json(to_json_text(b));
    CHECK(back.type == "incremental");
    CHECK(back.parent == "20261201T000000Z");
    BackupInfo full = backup_info_from_json(to_json_text(chain_catalog()[0]));
    CHECK(full.type == "full");
    CHECK(full.parent.empty());
    b.parent.clear();
    CHECK_THROWS_WITH(backup_info_from_json(to_json_text(b)), Catch::Contains("without a parent"));
}
