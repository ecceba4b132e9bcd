#include <catch2/catch.hpp>

#include "error.hpp"
#include "migration_files.hpp"
#include "migration_risk.hpp"

using nlohmann::json;
using warden::risk::classify;
using warden::risk::PolicyRule;

namespace {

json table(const std::string& rel, double rows, double bytes, json locks = json::array(),
           int rewrite = 0, bool is_new = false)
{
    return {{"relation", rel}, {"rows", rows}, {"bytes", bytes}, {"locks", locks},
            {"rewrite_reason", rewrite}, {"new", is_new}};
}

json statement(json tables, json signals, double held_ms = 5)
{
    return json::array({{{"line", 1}, {"statement", "x"}, {"ran", true}, {"duration_ms", 1},
                         {"held_ms", held_ms}, {"tables", tables}, {"signals", signals}}});
}

std::vector<std::string> codes(const json& out)
{
    std::vector<std::string> c;
    for (const json& f : out[0]["findings"])
        c.push_back(f["code"]);
    return c;
}

const json kShare = json::array({"ShareLock"});
const json kExclusive = json::array({"AccessExclusiveLock"});

}  // namespace

TEST_CASE("risk: CREATE INDEX without CONCURRENTLY only on a table with rows", "[migration_risk]")
{
    json sig = json::array({{{"kind", "create_index"}, {"relation", "public.t"},
                             {"concurrently", false}}});
    auto out = classify(statement(json::array({table("public.t", 5000, 1 << 20, kShare)}), sig), {}, {});
    CHECK(codes(out) == std::vector<std::string>{"PW101"});
    CHECK(out[0]["verdict"] == "warn");
    CHECK(out[0]["findings"][0]["alternative"].get<std::string>().find("CONCURRENTLY") !=
          std::string::npos);
    // Empty, or created by this migration: nothing waits for it.
    CHECK(codes(classify(statement(json::array({table("public.t", 0, 0, kShare)}), sig), {}, {})).empty());
    CHECK(codes(classify(statement(json::array({table("public.t", 10, 8192, kShare, 0, true)}), sig),
                         {}, {})).empty());
    sig[0]["concurrently"] = true;
    CHECK(codes(classify(statement(json::array({table("public.t", 5000, 1 << 20)}), sig), {}, {})).empty());
}

TEST_CASE("risk: constraints are validated at once unless NOT VALID", "[migration_risk]")
{
    json t = json::array({table("public.t", 100, 8192, kExclusive)});
    json sig = json::array({{{"kind", "add_constraint"}, {"relation", "public.t"},
                             {"constraint", "check"}, {"not_valid", false}}});
    auto out = classify(statement(t, sig), {}, {});
    CHECK(codes(out) == std::vector<std::string>{"PW103"});
    CHECK(out[0]["scans"].size() == 1);
    sig[0]["not_valid"] = true;
    CHECK(codes(classify(statement(t, sig), {}, {})).empty());
    sig[0]["constraint"] = "foreign_key";
    sig[0]["not_valid"] = false;
    CHECK(codes(classify(statement(t, sig), {}, {})) == std::vector<std::string>{"PW103"});
    sig[0]["constraint"] = "unique";
    CHECK(codes(classify(statement(t, sig), {}, {})) == std::vector<std::string>{"PW102"});
    sig[0]["using_index"] = true;
    CHECK(codes(classify(statement(t, sig), {}, {})).empty());
    // VALIDATE CONSTRAINT is the safe second step: a scan, no finding...
    json validate = json::array({{{"kind", "validate_constraint"}, {"relation", "public.t"}}});
    auto v = classify(statement(json::array({table("public.t", 100, 8192, json::array({"ShareUpdateExclusiveLock"}))}),
                                validate), {}, {});
    CHECK(codes(v).empty());
    CHECK(v[0]["scans"].size() == 1);
    // ...unless the same migration already holds ACCESS EXCLUSIVE on the table.
    CHECK(codes(classify(statement(t, validate), {}, {})) == std::vector<std::string>{"PW103"});
}

TEST_CASE("risk: SET NOT NULL needs a validated check first", "[migration_risk]")
{
    json t = json::array({table("public.t", 100, 8192, kExclusive)});
    json sig = json::array({{{"kind", "set_not_null"}, {"relation", "public.t"},
                             {"column", "a"}, {"proven", false}}});
    CHECK(codes(classify(statement(t, sig), {}, {})) == std::vector<std::string>{"PW104"});
    sig[0]["proven"] = true;
    CHECK(codes(classify(statement(t, sig), {}, {})).empty());
}

TEST_CASE("risk: rewrites are named by their cause", "[migration_risk]")
{
    json add = json::array({{{"kind", "add_column"}, {"relation", "public.t"}, {"column", "c"},
                             {"volatile_default", false}}});
    // The server said: default value (2).
    auto out = classify(statement(json::array({table("public.t", 100, 8192, kExclusive, 2)}), add), {}, {});
    CHECK(codes(out) == std::vector<std::string>{"PW105"});
    CHECK(out[0]["rewrites"][0]["reason"] == "default value");
    // A constant default: no rewrite, no finding.
    CHECK(codes(classify(statement(json::array({table("public.t", 100, 8192, kExclusive)}), add), {}, {}))
              .empty());
    json type = json::array({{{"kind", "alter_column_type"}, {"relation", "public.t"}, {"column", "c"}}});
    CHECK(codes(classify(statement(json::array({table("public.t", 100, 8192, kExclusive, 4)}), type), {}, {})) ==
          std::vector<std::string>{"PW106"});
    // A table this migration created: nothing waits for it.
    CHECK(codes(classify(statement(json::array({table("public.t", 100, 8192, kExclusive, 4, true)}), type), {}, {}))
              .empty());
    // varchar(10) -> varchar(20): no rewrite.
    CHECK(codes(classify(statement(json::array({table("public.t", 100, 8192, kExclusive)}), type), {}, {}))
              .empty());
    // Any other rewrite (SET LOGGED).
    CHECK(codes(classify(statement(json::array({table("public.t", 100, 8192, kExclusive, 1)}), json::array()),
                         {}, {})) == std::vector<std::string>{"PW107"});
    CHECK(warden::risk::rewrite_reason_text(5) == "persistence change, column type");
}

TEST_CASE("risk: DROP and RENAME of what a view or function uses", "[migration_risk]")
{
    json t = json::array({table("public.t", 100, 8192, kExclusive)});
    json sig = json::array({{{"kind", "drop"}, {"relation", "public.t"}, {"object", "column"},
                             {"name", "public.t.a"}, {"dependents", json::array({"view public.v"})}}});
    auto out = classify(statement(t, sig), {}, {});
    CHECK(codes(out) == std::vector<std::string>{"PW108"});
    CHECK(out[0]["findings"][0]["message"] == "DROP of column public.t.a, still used by view public.v");
    sig[0]["kind"] = "rename";
    CHECK(codes(classify(statement(t, sig), {}, {})) == std::vector<std::string>{"PW109"});
    sig[0]["dependents"] = json::array();
    CHECK(codes(classify(statement(t, sig), {}, {})).empty());
}

TEST_CASE("risk: the policy warns or refuses, a directive lifts a refusal", "[migration_risk]")
{
    json t = json::array({table("public.big", 2e6, 3e9, kExclusive, 4)});
    json type = json::array({{{"kind", "alter_column_type"}, {"relation", "public.big"}, {"column", "c"}}});
    std::vector<PolicyRule> policy = {{"rewrite_bytes", 1e9, "refuse"},
                                      {"access_exclusive_rows", 1e6, "warn"}};
    auto out = classify(statement(t, type), policy, {});
    CHECK(codes(out) == std::vector<std::string>{"PW106", "PW111", "PW110"});
    CHECK(out[0]["verdict"] == "refuse");
    CHECK(out[0]["findings"][1]["action"] == "refuse");
    CHECK(out[0]["findings"][2]["action"] == "warn");

    auto allowed = classify(statement(t, type), policy, {"rewrite"});
    CHECK(allowed[0]["findings"][1]["action"] == "allowed");
    CHECK(allowed[0]["verdict"] == "warn");
    // The lock directive does not lift the rewrite limit.
    CHECK(classify(statement(t, type), policy, {"lock"})[0]["verdict"] == "refuse");

    // Long holds: only for tables that existed before.
    std::vector<PolicyRule> hold = {{"access_exclusive_ms", 1000, "refuse"}};
    json small = json::array({table("public.s", 10, 8192, kExclusive)});
    CHECK(classify(statement(small, json::array(), 5000), hold, {})[0]["verdict"] == "refuse");
    CHECK(classify(statement(small, json::array(), 50), hold, {})[0]["verdict"] == "ok");
    json fresh = json::array({table("public.s", 10, 8192, kExclusive, 0, true)});
    CHECK(classify(statement(fresh, json::array(), 5000), hold, {})[0]["verdict"] == "ok");

    // Validation scans above the limit, but not the safe VALIDATE CONSTRAINT step.
    std::vector<PolicyRule> scans = {{"validation_rows", 1000, "refuse"}};
    json check = json::array({{{"kind", "add_constraint"}, {"relation", "public.big"},
                              {"constraint", "check"}, {"not_valid", false}}});
    CHECK(classify(statement(t, check), scans, {})[0]["verdict"] == "refuse");
    CHECK(classify(statement(t, check), scans, {"scan"})[0]["verdict"] == "warn");
    json validate = json::array({{{"kind", "validate_constraint"}, {"relation", "public.big"}}});
    json big_validating = json::array({table("public.big", 2e6, 3e9, json::array({"ShareUpdateExclusiveLock"}))});
    CHECK(classify(statement(big_validating, validate), scans, {})[0]["verdict"] == "ok");
}

TEST_CASE("risk: statements that did not run are judged by their text only", "[migration_risk]")
{
    json sig = json::array({{{"kind", "create_index"}, {"relation", "public.t"},
                             {"concurrently", false}}});
    json s = statement(json::array({table("public.t", 5000, 1 << 20)}), sig, 999999);
    s[0]["ran"] = false;
    auto out = classify(s, {{"access_exclusive_ms", 1, "refuse"}}, {});
    CHECK(codes(out) == std::vector<std::string>{"PW101"});
}

TEST_CASE("risk: unknown policy rules and malformed facts are errors", "[migration_risk]")
{
    REQUIRE_THROWS_AS(classify(json::array(), {{"rows", 1, "refuse"}}, {}), warden::Error);
    REQUIRE_THROWS_AS(classify(json::array(), {{"rewrite_bytes", 1, "block"}}, {}), warden::Error);
    REQUIRE_THROWS_AS(warden::risk::classify_text("not json"), warden::Error);
    auto out = json::parse(warden::risk::classify_text(
        R"({"statements": [], "policy": [{"rule": "rewrite_bytes", "threshold": 1, "action": "warn"}]})"));
    CHECK(out.empty());
}

TEST_CASE("risk: allow directives are read from the script head", "[migration_risk]")
{
    auto d = warden::parse_directives("-- warden:allow rewrite\n-- warden:allow lock\nALTER TABLE t ...;");
    CHECK(d.allow == std::vector<std::string>{"rewrite", "lock"});
    CHECK_FALSE(d.no_transaction);
    REQUIRE_THROWS_AS(warden::parse_directives("-- warden:allow everything\nSELECT 1;"), warden::Error);
}

TEST_CASE("risk: a backfill under the migration's ACCESS EXCLUSIVE", "[migration_risk]")
{
    json write = json::array({{{"kind", "write_rows"}, {"relation", "public.t"}}});
    CHECK(codes(classify(statement(json::array({table("public.t", 1000, 8192, kExclusive)}), write), {}, {})) ==
          std::vector<std::string>{"PW113"});
    // Under its ordinary ROW EXCLUSIVE lock an UPDATE blocks only the rows it changes.
    CHECK(codes(classify(statement(json::array({table("public.t", 1000, 8192, json::array({"RowExclusiveLock"}))}),
                                   write), {}, {})).empty());
}
