// The ledger's backend state: settings, the migration lock, writes to the protected
// tables, and the guard trigger that refuses every other write.
#include "ledger.h"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
}

#include "bridge.h"

int warden_migration_lock_timeout = 60000;
bool warden_record_drift_setting = true;
bool ledger_script_running = false;
char ledger_session_migration[64] = "";

// Set only around ledger_write's statement; the guard trigger checks it.
static bool ledger_writing = false;

// "wardenLG": the advisory lock key of the migration lock, per database.
static const int64 kLedgerLockKey = INT64CONST(0x77617264656e4c47);

// The session's migration as the last commit left it: the session-level lock is held
// exactly while this is not empty.
static char committed_session_migration[64] = "";

// Each change of ledger_session_migration in the current transaction, oldest first, with
// the subtransaction it was made in and the value before it (TopTransactionContext).
struct SessionMigrationChange {
    SubTransactionId subid;
    char previous[64];
};
static List* session_migration_changes = NIL;

void ledger_set_session_migration(const char* version)
{
    MemoryContext caller = MemoryContextSwitchTo(TopTransactionContext);
    SessionMigrationChange* change =
        (SessionMigrationChange*) palloc(sizeof(SessionMigrationChange));
    change->subid = GetCurrentSubTransactionId();
    strlcpy(change->previous, ledger_session_migration, sizeof change->previous);
    session_migration_changes = lappend(session_migration_changes, change);
    MemoryContextSwitchTo(caller);
    strlcpy(ledger_session_migration, version, sizeof ledger_session_migration);
}

static void session_migration_at_commit(XactEvent event)
{
    bool opened = ledger_session_migration[0] && !committed_session_migration[0];
    bool closed = !ledger_session_migration[0] && committed_session_migration[0];
    Datum key = Int64GetDatum(kLedgerLockKey);
    if (event == XACT_EVENT_PRE_COMMIT && opened) {
        // begin_migration holds the transaction-level lock on the same key, so this is
        // granted at once; failing here still aborts the transaction and its 'running' row.
        if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_lock_int8, key)))
            elog(ERROR, "could not take the session-level migration lock");
    } else if (event == XACT_EVENT_COMMIT) {
        // Only once the closing row is committed may another migration see the ledger.
        if (closed)
            DirectFunctionCall1(pg_advisory_unlock_int8, key);
        strlcpy(committed_session_migration, ledger_session_migration,
                sizeof committed_session_migration);
        session_migration_changes = NIL;
    }
}

static void ledger_xact_callback(XactEvent event, void* arg)
{
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_COMMIT:
        session_migration_at_commit(event);
        break;
    case XACT_EVENT_PRE_PREPARE:
        if (session_migration_changes != NIL)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("cannot PREPARE a transaction that finished or failed a "
                            "non-transactional migration"),
                     errdetail("The session's migration lock would have to follow COMMIT "
                               "PREPARED, which may come from another session."),
                     errhint("Call warden.finish_migration or warden.fail_migration in a "
                             "transaction that commits directly.")));
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
        strlcpy(ledger_session_migration, committed_session_migration,
                sizeof ledger_session_migration);
        session_migration_changes = NIL;
        break;
    default:
        break;
    }
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
        event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE) {
        ledger_script_running = false;
        ledger_writing = false;
    }
}

// Undoes the changes made in the aborted subtransaction my_subid or in any it contained
// (subtransaction ids grow: those are exactly the changes with an id >= my_subid).
static void session_migration_at_subabort(SubTransactionId my_subid)
{
    ListCell* lc;
    foreach (lc, session_migration_changes) {
        SessionMigrationChange* change = (SessionMigrationChange*) lfirst(lc);
        if (change->subid >= my_subid) {
            strlcpy(ledger_session_migration, change->previous, sizeof ledger_session_migration);
            session_migration_changes =
                list_truncate(session_migration_changes, foreach_current_index(lc));
            return;
        }
    }
}

// The subtransaction a script started in. Aborting it, or one it is nested in, ends the
// script; a subtransaction the script opens and rolls back itself (a DO block with an
// EXCEPTION clause, a SAVEPOINT) does not, or its later DDL would count as drift.
static SubTransactionId script_subid = InvalidSubTransactionId;

void ledger_script_started(void)
{
    ledger_script_running = true;
    script_subid = GetCurrentSubTransactionId();
}

void ledger_script_ended(void)
{
    ledger_script_running = false;
}

static void ledger_subxact_callback(SubXactEvent event, SubTransactionId my_subid,
                                    SubTransactionId parent_subid, void* arg)
{
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        // Subtransaction IDs grow within a transaction: those opened by the script are
        // larger than the one it started in.
        if (my_subid <= script_subid)
            ledger_script_running = false;
        ledger_writing = false;
        session_migration_at_subabort(my_subid);
    }
}

void warden_ledger_init(void)
{
    DefineCustomIntVariable(
        "warden.migration_lock_timeout",
        "How long a migration waits for another one to finish before giving up.",
        "0 waits forever. The error names the process holding the migration lock.",
        &warden_migration_lock_timeout, 60000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL, NULL,
        NULL);
    DefineCustomBoolVariable(
        "warden.record_drift",
        "Records DDL run outside migrations in warden.migration_events.",
        NULL, &warden_record_drift_setting, true, PGC_SUSET, 0, NULL, NULL, NULL);
    RegisterXactCallback(ledger_xact_callback, NULL);
    RegisterSubXactCallback(ledger_subxact_callback, NULL);
}

// "pid 123 (application \"psql\")" for whoever holds the migration lock, or NULL.
static char* ledger_lock_holder(void)
{
    static const char* sql =
        "SELECT l.pid, coalesce(a.application_name, '') FROM pg_catalog.pg_locks l "
        "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
        "                  WHERE datname = pg_catalog.current_database()) "
        "AND l.classid = $1::pg_catalog.oid AND l.objid = $2::pg_catalog.oid "
        "AND l.pid <> pg_catalog.pg_backend_pid() "
        "LIMIT 1";
    char classid[16], objid[16];
    snprintf(classid, sizeof classid, "%u", (uint32) (kLedgerLockKey >> 32));
    snprintf(objid, sizeof objid, "%u", (uint32) (kLedgerLockKey & 0xffffffff));
    const char* args[] = {classid, objid};
    MemoryContext caller = CurrentMemoryContext;
    char* holder = NULL;

    SPI_connect();
    if (ledger_query(sql, 2, args, false, 1) == SPI_OK_SELECT && SPI_processed == 1) {
        char* pid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        char* app = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        MemoryContext spi = MemoryContextSwitchTo(caller);
        holder = psprintf("process %s (application \"%s\")", pid, app);
        MemoryContextSwitchTo(spi);
    }
    SPI_finish();
    return holder;
}

void ledger_lock(void)
{
    Datum key = Int64GetDatum(kLedgerLockKey);
    if (DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8, key)))
        return;

    // Named before waiting: once the wait has failed, the transaction can only abort.
    char* volatile holder = ledger_lock_holder();
    volatile int timeout = warden_migration_lock_timeout;
    char setting[32];
    snprintf(setting, sizeof setting, "%d", timeout);

    // The wait uses the server's lock_timeout, set for this call only (as a function's
    // SET clause would) so that the caller's own lock_timeout is untouched.
    int nest_level = NewGUCNestLevel();
    (void) set_config_option("lock_timeout", setting, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                             true, 0, false);
    MemoryContext context = CurrentMemoryContext;
    PG_TRY();
    {
        DirectFunctionCall1(pg_advisory_xact_lock_int8, key);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        ErrorData* edata = CopyErrorData();
        if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
            PG_RE_THROW();
        FlushErrorState();
        ereport(ERROR,
                (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                 errmsg("another migration holds the migration lock; gave up after %d ms",
                        timeout),
                 holder ? errdetail("The lock is held by %s.", holder)
                        : errdetail("The holder finished while this session waited."),
                 errhint("Wait for it to finish, or raise warden.migration_lock_timeout.")));
    }
    PG_END_TRY();
    AtEOXact_GUC(true, nest_level);
}

static Oid ledger_owner(void)
{
    Oid nsp = get_namespace_oid("warden", false);
    Oid rel = get_relname_relid("migrations", nsp);
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for relation %u", rel);
    Oid owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
}

// Executes sql through a plan prepared once per backend and kept (ledger_query pins the
// path around this).
static int run_kept_plan(const char* sql, int nargs, const char* const* args, bool read_only,
                         long count)
{
    static struct {
        const char* sql;
        SPIPlanPtr plan;
    } cache[32];
    static int cached = 0;

    SPIPlanPtr plan = NULL;
    for (int i = 0; i < cached && plan == NULL; i++)
        if (cache[i].sql == sql)
            plan = cache[i].plan;
    if (plan == NULL) {
        Oid types[16];
        Assert(nargs <= 16);
        for (int i = 0; i < nargs; i++)
            types[i] = TEXTOID;
        // Custom plans: the ledger grows from nothing to thousands of rows within one
        // session, and a generic plan made when it was small would keep scanning it.
        plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_CUSTOM_PLAN);
        if (plan == NULL)
            elog(ERROR, "could not prepare a ledger query: %s", SPI_result_code_string(SPI_result));
        if (cached < (int) lengthof(cache)) {
            SPI_keepplan(plan);
            cache[cached].sql = sql;
            cache[cached].plan = plan;
            cached++;
        }
    }
    Datum values[16];
    char nulls[16];
    for (int i = 0; i < nargs; i++) {
        values[i] = args[i] ? CStringGetTextDatum(args[i]) : (Datum) 0;
        nulls[i] = args[i] ? ' ' : 'n';
    }
    return SPI_execute_plan(plan, values, nulls, read_only, count);
}

int ledger_query(const char* sql, int nargs, const char* const* args, bool read_only, long count)
{
    // The path is pinned while the statement is parsed (a kept plan is parsed again when
    // the path differs from the one it was made under, so always pinning keeps it valid)
    // and while it runs. pg_temp last: listed nowhere, it would be searched first.
    int nest_level = NewGUCNestLevel();
    (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
    int rc = run_kept_plan(sql, nargs, args, read_only, count);
    AtEOXact_GUC(false, nest_level);
    return rc;
}

void ledger_write(const char* sql, int nargs, const char* const* args)
{
    // The caller's transaction, the owner's rights, and nothing the caller chose: the
    // statement's names are resolved on a pinned path (ledger_query), and the operation is
    // security-restricted as VACUUM's work as a table's owner is.
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(ledger_owner(), saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                               SECURITY_RESTRICTED_OPERATION);
    ledger_writing = true;
    int rc = ledger_query(sql, nargs, args, false, 0);
    ledger_writing = false;
    SetUserIdAndSecContext(saved_user, saved_context);
    if (rc < 0)
        elog(ERROR, "ledger write failed: %s", SPI_result_code_string(rc));
}

void ledger_event(const char* event, const char* version, const char* name,
                  const char* checksum, double execution_ms, const char* detail_json)
{
    char ms[64];
    if (execution_ms >= 0)
        snprintf(ms, sizeof ms, "%.3f", execution_ms);
    const char* args[] = {event, version, name, checksum, execution_ms >= 0 ? ms : NULL,
                          detail_json, GetUserNameFromId(GetUserId(), false)};
    ledger_write("INSERT INTO warden.migration_events (event, version, name, checksum, "
                 "execution_ms, detail, current_user_name) "
                 "VALUES ($1, $2, $3, $4, $5::double precision, $6::pg_catalog.jsonb, $7)",
                 7, args);
}

char* ledger_invalid_indexes_json(void)
{
    static const char* sql =
        "SELECT coalesce(pg_catalog.jsonb_agg(i), '[]')::pg_catalog.text "
        "FROM warden.invalid_indexes() i";
    int rc = ledger_query(sql, 0, NULL, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not list invalid indexes");
    return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

void ledger_check_not_blocked(void)
{
    static const char* sql =
        "SELECT version, name, state, coalesce(error, ''), "
        "(SELECT coalesce(pg_catalog.string_agg(i, ', '), '') FROM warden.invalid_indexes() i) "
        "FROM warden.migrations WHERE state IN ('running', 'failed') "
        "ORDER BY version_number LIMIT 1";
    int rc = ledger_query(sql, 0, NULL, false, 1);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    if (SPI_processed == 0)
        return;
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    char* version = SPI_getvalue(t, d, 1);
    char* name = SPI_getvalue(t, d, 2);
    char* state = SPI_getvalue(t, d, 3);
    char* error = SPI_getvalue(t, d, 4);
    char* invalid = SPI_getvalue(t, d, 5);
    bool failed = strcmp(state, "failed") == 0;
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("migration %s (%s) %s; no migration can run until it is repaired", version,
                    name, failed ? "failed" : "was interrupted"),
             errdetail("%s%s%s%s", failed ? "Error: " : "It ran outside a transaction and did not finish.",
                       failed ? error : "", invalid[0] ? " Invalid indexes left behind: " : "",
                       invalid),
             errhint("Complete or undo it by hand, then SELECT warden.repair_migration('%s', "
                     "'retry') or 'applied' (warden migrate repair %s).",
                     version, version)));
}

bool ledger_restoring_dump(void)
{
    // The login role, not the session or current one: a superuser's pg_restore may use
    // SET SESSION AUTHORIZATION or SET ROLE to create objects as their owners.
    return !check_function_bodies && superuser_arg(GetAuthenticatedUserId());
}

void ledger_check_version(const char* version, const char* argname)
{
    bool ok = version[0] != '\0' && strlen(version) < sizeof ledger_session_migration;
    for (const char* p = version; *p; p++)
        ok = ok && *p >= '0' && *p <= '9';
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration %s \"%s\"", argname, version),
                        errdetail("Versions are digits, compared as numbers (at most 63).")));
}

// Refuses every write to the ledger tables that does not come from ledger_write, and
// every UPDATE or DELETE of the event log.
WARDEN_FUNCTION(warden_ledger_guard)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._ledger_guard() must be called as a trigger")));
    TriggerData* trigger = (TriggerData*) fcinfo->context;
    const char* table = RelationGetRelationName(trigger->tg_relation);
    bool is_events = strcmp(table, "migration_events") == 0;
    // A superuser restoring a dump reloads the ledger with COPY/INSERT.
    bool restoring = TRIGGER_FIRED_BY_INSERT(trigger->tg_event) && ledger_restoring_dump() &&
                     superuser();
    bool allowed = restoring ||
                   (ledger_writing && !TRIGGER_FIRED_BY_TRUNCATE(trigger->tg_event) &&
                    (!is_events || TRIGGER_FIRED_BY_INSERT(trigger->tg_event)));
    if (!allowed)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("warden.%s is changed only by pg_warden's migration functions", table),
                 is_events ? errdetail("The migration event log is append-only.") : 0,
                 errhint("Use warden.apply_migration, warden.rollback_migration, "
                         "warden.repair_migration or warden migrate.")));
    if (TRIGGER_FIRED_BY_DELETE(trigger->tg_event))
        return PointerGetDatum(trigger->tg_trigtuple);
    if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
        return PointerGetDatum(trigger->tg_newtuple);
    return PointerGetDatum(trigger->tg_trigtuple);
}

// warden.try_migration_lock() -> text: the migration lock at session level, without
// waiting: NULL once taken, else who holds it. `warden migrate` waits for another
// migration by calling this between short sleeps, in no transaction: a session blocked
// in a lock wait holds a snapshot, and CREATE INDEX CONCURRENTLY in the holder's
// session waits for every such snapshot, which would close a deadlock.
WARDEN_FUNCTION(warden_try_migration_lock)
{
    if (IsTransactionBlock())
        ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                        errmsg("warden.try_migration_lock must run outside a transaction block"),
                        errdetail("A waiter in a transaction holds a snapshot that CREATE INDEX "
                                  "CONCURRENTLY in the holder's migration would wait for.")));
    if (DatumGetBool(DirectFunctionCall1(pg_try_advisory_lock_int8, Int64GetDatum(kLedgerLockKey))))
        PG_RETURN_NULL();
    char* holder = ledger_lock_holder();
    PG_RETURN_TEXT_P(cstring_to_text(holder ? holder : "a session that just finished"));
}

// warden.release_migration_lock() -> boolean: releases what try_migration_lock took.
WARDEN_FUNCTION(warden_release_migration_lock)
{
    PG_RETURN_BOOL(DatumGetBool(
        DirectFunctionCall1(pg_advisory_unlock_int8, Int64GetDatum(kLedgerLockKey))));
}
