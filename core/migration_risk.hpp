// Migration safety rules: what a planned migration did (facts gathered by the extension
// while it ran each statement in a rolled-back transaction, or read from the parse tree
// when it can't run) turned into findings with stable codes, and judged against the
// database's policy (warden.migration_policy) and the script's `-- warden:allow` directives.
//
// Facts, one object per statement:
//   {"line": 3, "statement": "...", "ran": true, "duration_ms": 1.5, "held_ms": 20.0,
//    "tables": [{"relation": "public.t", "rows": 1000, "bytes": 81920, "new": false,
//                "locks": ["AccessExclusiveLock"], "rewrite_reason": 4}],
//    "signals": [{"kind": "create_index", "relation": "public.t", "concurrently": false}]}
// rewrite_reason is the server's table_rewrite reason (a bit set, 0 = not rewritten);
// held_ms is how long the locks the statement took were held (to the migration's end).
// Signal kinds: create_index {concurrently}; add_constraint {constraint: check|
// foreign_key|unique|primary_key|exclusion, not_valid, using_index}; set_not_null
// {column, proven}; add_column {column, volatile_default}; alter_column_type {column};
// drop {object: table|column, name, dependents: [...]}; rename {same};
// validate_constraint {}; write_rows {} (UPDATE, DELETE).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace warden::risk {

// One limit of warden.migration_policy: access_exclusive_rows, access_exclusive_bytes,
// access_exclusive_ms, rewrite_bytes or validation_rows; action warn or refuse.
struct PolicyRule {
    std::string rule;
    double threshold = 0;
    std::string action;
};

// The rule a directive (`-- warden:allow rewrite|lock|scan`) lifts a refusal of.
// Empty when the rule is not known.
std::string directive_for_rule(const std::string& rule);

// The server's table_rewrite reason bits as words ("column type", "default value", ...).
std::string rewrite_reason_text(int reason);

// Adds to each statement of `facts` (an array, see above) its "locks", "rewrites",
// "scans", "findings" and "verdict" (ok, warn or refuse). A finding is
// {"code", "name", "relation", "message", "alternative", "action"}; action is info, warn,
// refuse, or allowed (a refusal lifted by a directive, recorded in the ledger).
// Throws warden::Error (22023) when a policy rule is unknown.
nlohmann::json classify(const nlohmann::json& facts, const std::vector<PolicyRule>& policy,
                        const std::vector<std::string>& allow);

// The same over text, for the extension's glue: input {"statements": [...],
// "policy": [{"rule","threshold","action"}], "allow": [...]}, output the statements.
std::string classify_text(const std::string& input);

}  // namespace warden::risk
