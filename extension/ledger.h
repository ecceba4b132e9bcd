// Shared by the ledger's PostgreSQL-side files: the backend's migration state, the
// migration lock, writes to the protected ledger tables and script execution.
#pragma once

#include "pg_headers.h"

// Settings (defined in ledger_state.cpp, from _PG_init).
extern int warden_migration_lock_timeout;  // ms; 0 waits forever
extern bool warden_record_drift_setting;

void warden_ledger_init(void);

// True while this backend runs a migration script: DDL then is not drift. Reset at the
// end of every transaction, so an error can't leave it set.
extern bool ledger_script_running;
// Around a migration's script: DDL it runs is not drift.
void ledger_script_started(void);
void ledger_script_ended(void);

// The version of the non-transactional migration this session has begun (begin_migration)
// and not yet finished or failed, as this transaction sees it; "" when none.
extern char ledger_session_migration[64];
// Opens (a version) or closes ("") this session's non-transactional migration. The change
// follows the transaction: the abort of the transaction, or of the subtransaction it was
// made in, undoes it; its commit takes the session-level migration lock for a migration
// opened (while the transaction still holds the transaction-level one, so it can't wait)
// and releases it, once committed, for one closed.
void ledger_set_session_migration(const char* version);

// Takes the transaction-scoped migration lock. Waits up to warden.migration_lock_timeout,
// then fails naming the holder's pid and application.
void ledger_lock(void);

// True in a superuser's session restoring a dump (pg_restore and pg_dump's scripts turn
// check_function_bodies off). Any other role can turn it off too, so it counts only when
// the session logged in as a superuser.
bool ledger_restoring_dump(void);

// Runs a ledger query (SPI connected) through a statement parsed once per backend and
// kept: parsing and analysis dominated the cost of small migrations. sql must be a string
// with static storage (it is the cache key). Arguments are text ($1..$n); a NULL pointer
// is NULL. Returns the SPI result code. The statement is parsed and run with
// search_path = pg_catalog, pg_temp, whatever the caller's path: no type, function or
// operator of the caller's choosing (a pg_temp.jsonb domain, a public "=") can take the
// place of the built-in one, also when the statement runs as the ledger's owner.
int ledger_query(const char* sql, int nargs, const char* const* args, bool read_only, long count);

// Runs one statement on the ledger tables (SPI must be connected) as their owner, with
// the guard trigger letting it through, as a security-restricted operation (like VACUUM
// running as a table's owner). Arguments are text ($1..$n); a NULL pointer is NULL.
void ledger_write(const char* sql, int nargs, const char* const* args);

// Appends one row to warden.migration_events. detail_json may be NULL; execution_ms < 0
// means none.
void ledger_event(const char* event, const char* version, const char* name,
                  const char* checksum, double execution_ms, const char* detail_json);

// Runs a script through SPI statement by statement. An error is re-raised with its own
// SQLSTATE and a message naming `what` (e.g. "migration 003 (add_roles)") and the line.
void ledger_run_script(const char* what, const char* script);

// The same as `role`, in a security-restricted operation whose setting changes end with
// the script: a stored down script runs with the rights of the role that applied its
// migration, and leaves nothing behind in the session of whoever rolls it back.
void ledger_run_script_as(Oid role, const char* what, const char* script);

// Refuses with 55000 when a migration is failed or interrupted (SPI connected).
void ledger_check_not_blocked(void);

// JSON array of the invalid indexes in the database (SPI connected).
char* ledger_invalid_indexes_json(void);

// Errors out unless version is digits only.
void ledger_check_version(const char* version, const char* argname);
