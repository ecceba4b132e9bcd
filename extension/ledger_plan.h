// Migration safety on the PostgreSQL side: the statement lock timeout and its retries
// (ledger_script.cpp), the plan of a migration (ledger_plan.cpp) and what an applied
// migration's event records about both.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "datatype/timestamp.h"
#include "nodes/parsenodes.h"
}

// Settings (ledger_plan.cpp): warden.migration_statement_lock_timeout (ms, 0 = the caller's
// lock_timeout and no retries) and warden.migration_lock_retries.
extern int warden_statement_lock_timeout;
extern int warden_lock_retries;
void warden_migration_safety_init(void);

// Observes each statement of a script run by ledger_run_script_observed: before() right
// before it runs (after its line is known), after() once it succeeded.
struct LedgerStatementObserver {
    void (*before)(void* arg, RawStmt* raw, int line, const char* text);
    void (*after)(void* arg);
    void* arg;
};

// ledger_run_script with an observer (NULL for none).
void ledger_run_script_observed(const char* what, const char* script,
                                const LedgerStatementObserver* observer);

// The statements of a script as the server's parser splits them; a syntax error is raised
// with its line and `what`.
List* ledger_parse_script(const char* what, const char* script);

// Where a raw statement's text starts (after blanks and comments) and ends, and its line.
void ledger_statement_span(const char* script, const RawStmt* raw, int* start, int* end,
                           int* line);

// The lock waits of the script last run in this transaction, as a JSON array ("[]" when
// none): {"line", "attempt", "waited_ms", "blocked_by": [...]} per lock timeout.
const char* ledger_lock_waits_json(void);

// The strongest lock a statement's parse tree says it takes on its table, as far as the
// ACCESS EXCLUSIVE question goes: true for ALTER TABLE forms that need it, DROP, RENAME,
// TRUNCATE, CLUSTER, VACUUM FULL, REFRESH without CONCURRENTLY, LOCK ... ACCESS EXCLUSIVE.
bool ledger_statement_takes_access_exclusive(Node* stmt);

// The detail of an applied migration's event: its lock waits, the ACCESS EXCLUSIVE hold
// and the `-- warden:allow` directives that lifted the policy; NULL when there is nothing.
char* ledger_applied_detail(const char* up_sql);

// Set while a migration's statements run: since when this backend has held ACCESS
// EXCLUSIVE on a table (0 = not yet), per ledger_statement_takes_access_exclusive.
extern TimestampTz ledger_access_exclusive_since;

// When the current statement's last attempt began: the waits before it held no lock.
extern TimestampTz ledger_attempt_began;
