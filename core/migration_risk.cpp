#include "migration_risk.hpp"

#include <map>

#include "error.hpp"

namespace warden::risk {

using nlohmann::json;

namespace {

// The stable codes. A code never changes meaning; new patterns get new codes.
struct Pattern {
    const char* code;
    const char* name;
    const char* alternative;
};

const Pattern kIndex = {
    "PW101", "index_without_concurrently",
    "CREATE INDEX CONCURRENTLY in a migration of its own marked \"-- warden:no-transaction\"."};
const Pattern kUniqueIndex = {
    "PW102", "constraint_builds_index",
    "CREATE UNIQUE INDEX CONCURRENTLY (a no-transaction migration), then ADD CONSTRAINT ... "
    "USING INDEX."};
const Pattern kValidatedConstraint = {
    "PW103", "constraint_validated_at_once",
    "ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later "
    "migration (it scans under SHARE UPDATE EXCLUSIVE: reads and writes go on)."};
const Pattern kSetNotNull = {
    "PW104", "set_not_null_scans",
    "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT c, then SET NOT "
    "NULL (it finds the validated check and skips the scan) and drop the check."};
const Pattern kVolatileDefault = {
    "PW105", "volatile_default",
    "ADD COLUMN without the default (or with a constant one), then fill it in batches and "
    "SET DEFAULT afterwards."};
const Pattern kTypeRewrite = {
    "PW106", "column_type_rewrite",
    "Add a new column of the new type, backfill it in batches, switch readers, then drop "
    "the old column."};
const Pattern kRewrite = {
    "PW107", "table_rewrite",
    "Avoid rewriting a table with rows under ACCESS EXCLUSIVE: build the new shape beside it "
    "and switch over, or run it in a maintenance window (-- warden:allow rewrite)."};
const Pattern kDropInUse = {
    "PW108", "drop_in_use",
    "Change or drop the views and functions that use it first, in an earlier migration."};
const Pattern kRenameInUse = {
    "PW109", "rename_in_use",
    "Add the new name beside the old (a view or a new column kept in sync), move its users, "
    "then drop the old name."};
const Pattern kBackfill = {
    "PW113", "backfill_under_access_exclusive",
    "Backfill in batches in later migrations (or a job), after the schema change has "
    "committed and released its lock."};
const Pattern kLongExclusive = {
    "PW110", "long_access_exclusive",
    "Split the migration so ACCESS EXCLUSIVE is held briefly, on small tables only, or "
    "schedule it (-- warden:allow lock)."};
const Pattern kLargeRewrite = {
    "PW111", "large_rewrite",
    "Rewrite in batches into a new table, or schedule it (-- warden:allow rewrite)."};
const Pattern kLargeScan = {
    "PW112", "large_validation_scan",
    "NOT VALID first, then VALIDATE CONSTRAINT in a later migration, or schedule it "
    "(-- warden:allow scan)."};

struct Table {
    double rows = 0;
    double bytes = 0;
    bool is_new = false;
    bool access_exclusive = false;
    int rewrite_reason = 0;
};

double number(const json& j, const char* key, double fallback = 0)
{
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

bool flag(const json& j, const char* key)
{
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string text(const json& j, const char* key)
{
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string count_text(double n)
{
    char buf[64];
    if (n >= 1e9)
        std::snprintf(buf, sizeof buf, "%.1fG", n / 1e9);
    else if (n >= 1e6)
        std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
    else if (n >= 1e3)
        std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
}

std::string bytes_text(double n)
{
    char buf[64];
    if (n >= 1024.0 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.1f GB", n / (1024.0 * 1024 * 1024));
    else if (n >= 1024.0 * 1024)
        std::snprintf(buf, sizeof buf, "%.1f MB", n / (1024.0 * 1024));
    else if (n >= 1024)
        std::snprintf(buf, sizeof buf, "%.0f kB", n / 1024);
    else
        std::snprintf(buf, sizeof buf, "%.0f bytes", n);
    return buf;
}

json finding(const Pattern& p, const std::string& relation, const std::string& message,
             const std::string& action)
{
    return {{"code", p.code},       {"name", p.name},
            {"relation", relation}, {"message", message},
            {"alternative", p.alternative}, {"action", action}};
}

bool populated(const Table& t)
{
    return !t.is_new && (t.rows > 0 || t.bytes > 0);
}

// The pattern findings of one statement, from its signals and what it did to its tables.
void pattern_findings(const json& stmt, std::map<std::string, Table>& tables, json& findings,
                      json& scans)
{
    bool explained_rewrite = false;
    for (const json& s : stmt.value("signals", json::array())) {
        std::string kind = text(s, "kind");
        std::string rel = text(s, "relation");
        Table& t = tables[rel];
        if (kind == "create_index" && !flag(s, "concurrently") && populated(t)) {
            findings.push_back(finding(
                kIndex, rel,
                "CREATE INDEX without CONCURRENTLY on " + rel + " (" + count_text(t.rows) +
                    " rows) blocks its writes while the index is built",
                "warn"));
        } else if (kind == "add_constraint") {
            std::string c = text(s, "constraint");
            bool validates = (c == "check" || c == "foreign_key") && !flag(s, "not_valid");
            bool builds = (c == "unique" || c == "primary_key" || c == "exclusion") &&
                          !flag(s, "using_index");
            if (validates && populated(t)) {
                findings.push_back(finding(
                    kValidatedConstraint, rel,
                    "ADD CONSTRAINT (" + c + ") without NOT VALID scans " + rel + " (" +
                        count_text(t.rows) + " rows) while it blocks " +
                        (c == "check" ? "reads and writes" : "writes"),
                    "warn"));
                scans.push_back({{"relation", rel}, {"rows", t.rows},
                                 {"reason", "validate new " + c + " constraint"}});
            } else if (builds && populated(t)) {
                findings.push_back(finding(
                    kUniqueIndex, rel,
                    "ADD CONSTRAINT (" + c + ") builds its index on " + rel + " (" +
                        count_text(t.rows) + " rows) under ACCESS EXCLUSIVE",
                    "warn"));
            }
        } else if (kind == "set_not_null" && !flag(s, "proven") && populated(t)) {
            findings.push_back(finding(
                kSetNotNull, rel,
                "SET NOT NULL on " + rel + "." + text(s, "column") + " scans " +
                    count_text(t.rows) + " rows under ACCESS EXCLUSIVE: no validated CHECK (" +
                    text(s, "column") + " IS NOT NULL) proves it first",
                "warn"));
            scans.push_back({{"relation", rel}, {"rows", t.rows}, {"reason", "SET NOT NULL"}});
        } else if (kind == "add_column" &&
                   (flag(s, "volatile_default") || (t.rewrite_reason & 2)) && populated(t)) {
            explained_rewrite = true;
            findings.push_back(finding(
                kVolatileDefault, rel,
                "ADD COLUMN " + text(s, "column") + " with a volatile default rewrites " + rel +
                    " (" + count_text(t.rows) + " rows) under ACCESS EXCLUSIVE",
                "warn"));
        } else if (kind == "alter_column_type" && t.rewrite_reason && populated(t)) {
            explained_rewrite = true;
            findings.push_back(finding(
                kTypeRewrite, rel,
                "the type change of " + rel + "." + text(s, "column") + " rewrites the table (" +
                    bytes_text(t.bytes) + ") under ACCESS EXCLUSIVE",
                "warn"));
        } else if ((kind == "drop" || kind == "rename") && !s.value("dependents", json::array()).empty()) {
            std::string users;
            for (const json& d : s["dependents"])
                users += (users.empty() ? "" : ", ") + d.get<std::string>();
            std::string what = text(s, "object") + " " + text(s, "name");
            findings.push_back(finding(kind == "drop" ? kDropInUse : kRenameInUse, rel,
                                       (kind == "drop" ? "DROP of " : "RENAME of ") + what +
                                           ", still used by " + users,
                                       "warn"));
        } else if (kind == "write_rows" && t.access_exclusive && populated(t)) {
            findings.push_back(finding(
                kBackfill, rel,
                "rewrites rows of " + rel + " (" + count_text(t.rows) +
                    " rows) while this migration holds ACCESS EXCLUSIVE on it: reads and "
                    "writes wait for the whole backfill",
                "warn"));
        } else if (kind == "validate_constraint" && t.access_exclusive && populated(t)) {
            // In the migration that added the constraint: ACCESS EXCLUSIVE is still held,
            // so the scan blocks as if the constraint had been added valid.
            findings.push_back(finding(
                kValidatedConstraint, rel,
                "VALIDATE CONSTRAINT scans " + rel + " (" + count_text(t.rows) +
                    " rows) while this migration holds ACCESS EXCLUSIVE on it",
                "warn"));
            scans.push_back({{"relation", rel}, {"rows", t.rows},
                             {"reason", "VALIDATE CONSTRAINT under ACCESS EXCLUSIVE"}});
        } else if (kind == "validate_constraint") {
            scans.push_back({{"relation", rel}, {"rows", t.rows},
                             {"reason", "VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)"}});
        }
    }
    if (explained_rewrite)
        return;
    for (const auto& [rel, t] : tables)
        if (t.rewrite_reason && populated(t))
            findings.push_back(finding(kRewrite, rel,
                                       "rewrites " + rel + " (" + bytes_text(t.bytes) + ", " +
                                           rewrite_reason_text(t.rewrite_reason) + ")",
                                       "warn"));
}

std::string judged(const PolicyRule& r, const std::vector<std::string>& allow)
{
    std::string directive = directive_for_rule(r.rule);
    for (const auto& a : allow)
        if (a == directive)
            return r.action == "refuse" ? "allowed" : r.action;
    return r.action;
}

// Policy findings: a limit of warden.migration_policy exceeded by this statement.
void policy_findings(const json& stmt, const std::map<std::string, Table>& tables,
                     const json& scans, const std::vector<PolicyRule>& policy,
                     const std::vector<std::string>& allow, json& findings)
{
    double held = number(stmt, "held_ms");
    for (const PolicyRule& r : policy) {
        bool in_bytes = r.rule.size() > 6 && r.rule.compare(r.rule.size() - 6, 6, "_bytes") == 0;
        std::string limit = r.rule + " " + (in_bytes ? bytes_text(r.threshold) : count_text(r.threshold));
        if (r.rule == "validation_rows") {
            for (const json& s : scans)
                if (text(s, "reason") != "VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)" &&
                    number(s, "rows") > r.threshold)
                    findings.push_back(finding(kLargeScan, text(s, "relation"),
                                               "validation scan of " + count_text(number(s, "rows")) +
                                                   " rows of " + text(s, "relation") +
                                                   " is above the policy limit (" + limit + ")",
                                               judged(r, allow)));
            continue;
        }
        for (const auto& [rel, t] : tables) {
            if (t.is_new)
                continue;
            std::string message;
            if (r.rule == "rewrite_bytes" && t.rewrite_reason && t.bytes > r.threshold)
                message = "rewrite of " + rel + " (" + bytes_text(t.bytes) +
                          ") is above the policy limit (" + limit + ")";
            else if (r.rule == "access_exclusive_rows" && t.access_exclusive && t.rows > r.threshold)
                message = "ACCESS EXCLUSIVE on " + rel + " (" + count_text(t.rows) +
                          " rows) is above the policy limit (" + limit + ")";
            else if (r.rule == "access_exclusive_bytes" && t.access_exclusive && t.bytes > r.threshold)
                message = "ACCESS EXCLUSIVE on " + rel + " (" + bytes_text(t.bytes) +
                          ") is above the policy limit (" + limit + ")";
            else if (r.rule == "access_exclusive_ms" && t.access_exclusive && held > r.threshold &&
                     populated(t))
                message = "ACCESS EXCLUSIVE on " + rel + " held " + count_text(held) +
                          " ms, above the policy limit (" + limit + " ms)";
            if (!message.empty())
                findings.push_back(finding(r.rule == "rewrite_bytes" ? kLargeRewrite : kLongExclusive,
                                           rel, message, judged(r, allow)));
        }
    }
}

}  // namespace

std::string directive_for_rule(const std::string& rule)
{
    if (rule == "rewrite_bytes")
        return "rewrite";
    if (rule == "access_exclusive_rows" || rule == "access_exclusive_bytes" ||
        rule == "access_exclusive_ms")
        return "lock";
    if (rule == "validation_rows")
        return "scan";
    return "";
}

std::string rewrite_reason_text(int reason)
{
    static const std::pair<int, const char*> kReasons[] = {
        {1, "persistence change"}, {2, "default value"}, {4, "column type"}, {8, "access method"}};
    std::string out;
    for (const auto& [bit, words] : kReasons)
        if (reason & bit)
            out += (out.empty() ? "" : ", ") + std::string(words);
    return out.empty() ? "rewrite" : out;
}

json classify(const json& facts, const std::vector<PolicyRule>& policy,
              const std::vector<std::string>& allow)
{
    for (const PolicyRule& r : policy)
        if (directive_for_rule(r.rule).empty() || (r.action != "warn" && r.action != "refuse"))
            throw Error(sqlstate::invalid_parameter_value,
                        "unknown migration policy rule \"" + r.rule + "\" (" + r.action + ")",
                        "", "Rules: access_exclusive_rows, access_exclusive_bytes, "
                            "access_exclusive_ms, rewrite_bytes, validation_rows; actions: "
                            "warn, refuse.");
    json out = json::array();
    for (const json& stmt : facts) {
        json s = stmt;
        std::map<std::string, Table> tables;
        json locks = json::array(), rewrites = json::array(), scans = json::array();
        double held = number(stmt, "held_ms");
        for (const json& t : stmt.value("tables", json::array())) {
            std::string rel = text(t, "relation");
            Table& row = tables[rel];
            row.rows = number(t, "rows");
            row.bytes = number(t, "bytes");
            row.is_new = flag(t, "new");
            row.rewrite_reason = static_cast<int>(number(t, "rewrite_reason"));
            for (const json& mode : t.value("locks", json::array())) {
                locks.push_back({{"relation", rel}, {"mode", mode}, {"held_ms", held}});
                row.access_exclusive |= mode == "AccessExclusiveLock";
            }
            if (row.rewrite_reason)
                rewrites.push_back({{"relation", rel},
                                    {"reason", rewrite_reason_text(row.rewrite_reason)}});
        }
        json findings = json::array();
        pattern_findings(stmt, tables, findings, scans);
        if (flag(stmt, "ran"))
            policy_findings(stmt, tables, scans, policy, allow, findings);
        std::string verdict = "ok";
        for (const json& f : findings) {
            std::string a = f["action"];
            if (a == "refuse")
                verdict = "refuse";
            else if ((a == "warn" || a == "allowed") && verdict == "ok")
                verdict = "warn";
        }
        s.erase("signals");
        s["locks"] = locks;
        s["rewrites"] = rewrites;
        s["scans"] = scans;
        s["findings"] = findings;
        s["verdict"] = verdict;
        out.push_back(std::move(s));
    }
    return out;
}

std::string classify_text(const std::string& input)
{
    json in = json::parse(input, nullptr, false);
    if (in.is_discarded() || !in.is_object())
        throw Error(sqlstate::internal_error, "malformed migration plan facts");
    std::vector<PolicyRule> policy;
    for (const json& r : in.value("policy", json::array()))
        policy.push_back({text(r, "rule"), number(r, "threshold"), text(r, "action")});
    std::vector<std::string> allow;
    for (const json& a : in.value("allow", json::array()))
        allow.push_back(a.get<std::string>());
    return classify(in.value("statements", json::array()), policy, allow).dump();
}

}  // namespace warden::risk
