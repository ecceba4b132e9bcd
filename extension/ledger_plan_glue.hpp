// POD-only entry to the core's migration risk rules, for ledger_plan.cpp.
#pragma once

#include <cstddef>

namespace warden::glue {

// Classifies a plan's facts (JSON, see core/migration_risk.hpp). Returns the statements
// as JSON text in malloc'd memory the caller frees. Throws warden::Error (22023) on an
// unknown policy rule.
char* classify_plan(const char* facts, std::size_t len);

// The `-- warden:allow` directives of a script as a JSON array of words, in malloc'd
// memory the caller frees; *no_transaction tells whether it runs outside a transaction.
// Throws warden::Error (22023) naming `label` on an unknown directive.
char* script_allowances(const char* data, std::size_t len, const char* label, bool* no_transaction);

}  // namespace warden::glue
