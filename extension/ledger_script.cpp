// Running migration scripts through SPI, one statement at a time, so that an error can
// name the line of the script it came from, each with a short lock timeout and retries.
#include "ledger.h"
#include "ledger_plan.h"

#include "../core/backoff.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
}

#include "bridge.h"

// 1-based line of a byte offset; CRLF, LF and a lone CR each end a line.
static int line_at(const char* script, int offset)
{
    int line = 1;
    for (int i = 0; i < offset && script[i]; i++) {
        if (script[i] == '\n' || (script[i] == '\r' && script[i + 1] != '\n'))
            line++;
    }
    return line;
}

// A raw statement starts right after the previous semicolon; its first token comes after
// blanks and comments.
static int first_token(const char* script, int offset, int end)
{
    int i = offset;
    while (i < end) {
        if (script[i] == ' ' || script[i] == '\t' || script[i] == '\n' || script[i] == '\r') {
            i++;
        } else if (script[i] == '-' && i + 1 < end && script[i + 1] == '-') {
            while (i < end && script[i] != '\n')
                i++;
        } else if (script[i] == '/' && i + 1 < end && script[i + 1] == '*') {
            int depth = 0;
            do {
                if (script[i] == '/' && i + 1 < end && script[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (script[i] == '*' && i + 1 < end && script[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else {
                    i++;
                }
            } while (i < end && depth > 0);
        } else {
            break;
        }
    }
    return i;
}

static int statement_end(const char* script, const RawStmt* stmt)
{
    return stmt->stmt_len > 0 ? stmt->stmt_location + stmt->stmt_len : (int) strlen(script);
}

// Re-raises an error with "<what> failed at line N: " before its message.
// Positions are dropped: they would point into the caller's SELECT, not the script.
static void rethrow_with_line(ErrorData* edata, const char* what, const char* script,
                              int stmt_offset, const char* stmt)
{
    int offset = stmt_offset;
    if (stmt == NULL && edata->cursorpos > 0)
        offset = pg_mbcharcliplen(script, strlen(script), edata->cursorpos - 1);
    else if (stmt != NULL && edata->internalpos > 0 && edata->internalquery &&
             strcmp(edata->internalquery, stmt) == 0)
        offset = stmt_offset + pg_mbcharcliplen(stmt, strlen(stmt), edata->internalpos - 1);
    edata->message = psprintf("%s failed at line %d: %s", what, line_at(script, offset),
                              edata->message);
    edata->cursorpos = 0;
    edata->internalpos = 0;
    edata->internalquery = NULL;
    ReThrowError(edata);
}

static ErrorData* take_error(MemoryContext context)
{
    MemoryContextSwitchTo(context);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    return edata;
}

void ledger_statement_span(const char* script, const RawStmt* raw, int* start, int* end, int* line)
{
    *end = statement_end(script, raw);
    *start = first_token(script, raw->stmt_location, *end);
    *line = line_at(script, *start);
}

// ---- the statement lock timeout and its retries -----------------------------------------

// The lock waits of the script last run, as JSON objects, kept for its transaction.
static StringInfo lock_waits = NULL;
static LocalTransactionId lock_waits_lxid = InvalidLocalTransactionId;

TimestampTz ledger_access_exclusive_since = 0;
TimestampTz ledger_attempt_began = 0;

const char* ledger_lock_waits_json(void)
{
    if (lock_waits == NULL || lock_waits_lxid != MyProc->lxid)
        return "[]";
    return psprintf("[%s]", lock_waits->data);
}

static void reset_lock_waits(void)
{
    MemoryContext caller = MemoryContextSwitchTo(TopTransactionContext);
    lock_waits = makeStringInfo();
    MemoryContextSwitchTo(caller);
    lock_waits_lxid = MyProc->lxid;
}

static void add_relid(StringInfo oids, RangeVar* rv)
{
    Oid relid = rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
    if (OidIsValid(relid))
        appendStringInfo(oids, "%s%u", oids->len > 1 ? "," : "", relid);
}

// The tables a statement names, as an oid[] literal: those whose lock it waited for.
static char* statement_relids(Node* stmt)
{
    StringInfo oids = makeStringInfo();
    appendStringInfoChar(oids, '{');
    ListCell* lc;
    switch (nodeTag(stmt)) {
    case T_AlterTableStmt:
        add_relid(oids, ((AlterTableStmt*) stmt)->relation);
        break;
    case T_IndexStmt:
        add_relid(oids, ((IndexStmt*) stmt)->relation);
        break;
    case T_RenameStmt:
        add_relid(oids, ((RenameStmt*) stmt)->relation);
        break;
    case T_CreateTrigStmt:
        add_relid(oids, ((CreateTrigStmt*) stmt)->relation);
        break;
    case T_ClusterStmt:
        add_relid(oids, ((ClusterStmt*) stmt)->relation);
        break;
    case T_RefreshMatViewStmt:
        add_relid(oids, ((RefreshMatViewStmt*) stmt)->relation);
        break;
    case T_LockStmt:
        foreach (lc, ((LockStmt*) stmt)->relations)
            add_relid(oids, lfirst_node(RangeVar, lc));
        break;
    case T_TruncateStmt:
        foreach (lc, ((TruncateStmt*) stmt)->relations)
            add_relid(oids, lfirst_node(RangeVar, lc));
        break;
    case T_DropStmt:
        if (((DropStmt*) stmt)->removeType == OBJECT_TABLE ||
            ((DropStmt*) stmt)->removeType == OBJECT_INDEX ||
            ((DropStmt*) stmt)->removeType == OBJECT_VIEW ||
            ((DropStmt*) stmt)->removeType == OBJECT_MATVIEW)
            foreach (lc, ((DropStmt*) stmt)->objects)
                add_relid(oids, makeRangeVarFromNameList((List*) lfirst(lc)));
        break;
    default:
        break;
    }
    appendStringInfoChar(oids, '}');
    return oids->data;
}

// The sessions holding or queued for a lock on the statement's tables (any table of this
// database when the statement names none): JSON in *json, words in *words.
static void find_blockers(Node* stmt, char** json, char** words)
{
    static const char* sql =
        "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
        "    'pid', a.pid, 'application_name', a.application_name, 'state', a.state, "
        "    'user', a.usename, 'transaction_seconds', "
        "    round(extract(epoch FROM pg_catalog.clock_timestamp() - a.xact_start)::numeric, 1)) "
        "  ORDER BY a.pid), '[]')::pg_catalog.text, "
        "  coalesce(pg_catalog.string_agg(pg_catalog.format('pid %s (application \"%s\", %s, "
        "transaction open %s s)', a.pid, a.application_name, a.state, "
        "    round(extract(epoch FROM pg_catalog.clock_timestamp() - a.xact_start)::numeric, 1)), "
        "    '; ' ORDER BY a.pid), 'a session that finished meanwhile') "
        "FROM pg_catalog.pg_stat_activity a "
        "WHERE a.pid IN (SELECT l.pid FROM pg_catalog.pg_locks l "
        "  WHERE l.locktype = 'relation' AND l.pid <> pg_catalog.pg_backend_pid() "
        "  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d "
        "                    WHERE d.datname = pg_catalog.current_database()) "
        "  AND CASE WHEN $1::pg_catalog.oid[] = '{}' THEN l.relation >= 16384 "
        "           ELSE l.relation = ANY ($1::pg_catalog.oid[]) END)";
    const char* args[] = {statement_relids(stmt)};
    MemoryContext caller = CurrentMemoryContext;
    SPI_connect();
    if (ledger_query(sql, 1, args, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read pg_locks");
    char* j = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    char* w = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
    MemoryContext spi = MemoryContextSwitchTo(caller);
    *json = pstrdup(j);
    *words = pstrdup(w);
    MemoryContextSwitchTo(spi);
    SPI_finish();
}

// Sleeps ms, interruptible; a latch set for another reason does not cut the sleep short.
static void sleep_ms(long ms)
{
    TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
    for (;;) {
        long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
        if (left <= 0)
            return;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

// Runs one statement in a subtransaction of its own with lock_timeout set to
// warden.migration_statement_lock_timeout: a lock it can't get in that time is given up,
// so the queries queued behind its request go on, and the statement is tried again after
// a backoff, up to warden.migration_lock_retries times. The subtransaction is what lets
// the migration's transaction survive the timeout. Any other error is raised with the line.
// One attempt at a statement in a subtransaction of its own: NULL and *rc on success, or
// the error, with the subtransaction rolled back.
static ErrorData* try_statement(const char* text, int timeout, int* rc)
{
    MemoryContext context = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    ErrorData* volatile failure = NULL;
    char setting[32];
    snprintf(setting, sizeof setting, "%d", timeout);
    BeginInternalSubTransaction(NULL);
    MemoryContextSwitchTo(context);
    PG_TRY();
    {
        int nest_level = NewGUCNestLevel();
        if (timeout > 0)
            (void) set_config_option("lock_timeout", setting, PGC_USERSET, PGC_S_SESSION,
                                     GUC_ACTION_SAVE, true, 0, false);
        *rc = SPI_execute(text, false, 0);
        AtEOXact_GUC(true, nest_level);
        ReleaseCurrentSubTransaction();
    }
    PG_CATCH();
    {
        failure = take_error(context);
        RollbackAndReleaseCurrentSubTransaction();
    }
    PG_END_TRY();
    MemoryContextSwitchTo(context);
    CurrentResourceOwner = owner;
    return failure;
}

// Runs one statement in a subtransaction of its own with lock_timeout set to
// warden.migration_statement_lock_timeout: a lock it can't get in that time is given up,
// so the queries queued behind its request go on, and the statement is tried again after
// a backoff, up to warden.migration_lock_retries times. The subtransaction is what lets
// the migration's transaction survive the timeout. Any other error is raised with the line.
static int run_statement(const char* what, const char* script, RawStmt* raw, int start,
                         const char* text)
{
    int timeout = warden_statement_lock_timeout;
    for (int attempt = 1;; attempt++) {
        TimestampTz began = GetCurrentTimestamp();
        ledger_attempt_began = began;
        int rc = 0;
        ErrorData* failure = try_statement(text, timeout, &rc);
        if (failure == NULL)
            return rc;
        if (failure->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE || timeout <= 0)
            rethrow_with_line(failure, what, script, start, text);

        double waited = (double) (GetCurrentTimestamp() - began) / 1000.0;
        char *blockers_json, *blockers;
        find_blockers(raw->stmt, &blockers_json, &blockers);
        int line = line_at(script, start);
        bool last = attempt > warden_lock_retries;
        long delay = last ? 0 : warden::backoff_delay_ms(attempt, 250, 5000);
        MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
        appendStringInfo(lock_waits,
                         "%s{\"line\": %d, \"attempt\": %d, \"waited_ms\": %.1f, "
                         "\"retry_in_ms\": %ld, \"blocked_by\": %s}",
                         lock_waits->len ? ", " : "", line, attempt, waited, delay,
                         blockers_json);
        MemoryContextSwitchTo(old);
        if (last)
            ereport(ERROR,
                    (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                     errmsg("%s failed at line %d: could not get its locks within %d ms, "
                            "%d times; blocked by %s",
                            what, line, timeout, attempt, blockers),
                     errdetail("Lock waits: %s", ledger_lock_waits_json()),
                     errhint("Let that transaction finish or end it, then run the migration "
                             "again; or raise warden.migration_lock_retries or "
                             "warden.migration_statement_lock_timeout.")));
        ereport(NOTICE, (errmsg("%s, line %d: no lock within %d ms (blocked by %s); retry %d "
                                "of %d in %ld ms",
                                what, line, timeout, blockers, attempt, warden_lock_retries,
                                delay)));
        sleep_ms(delay);
    }
}

void ledger_run_script(const char* what, const char* script)
{
    ledger_run_script_observed(what, script, NULL);
}

List* ledger_parse_script(const char* what, const char* script)
{
    MemoryContext context = CurrentMemoryContext;
    List* volatile statements = NIL;
    PG_TRY();
    {
        statements = pg_parse_query(script);
    }
    PG_CATCH();
    {
        rethrow_with_line(take_error(context), what, script, 0, NULL);
    }
    PG_END_TRY();
    return statements;
}

void ledger_run_script_observed(const char* what, const char* script,
                                const LedgerStatementObserver* observer)
{
    List* statements = ledger_parse_script(what, script);
    reset_lock_waits();
    ledger_access_exclusive_since = 0;
    ListCell* lc;
    foreach (lc, statements) {
        RawStmt* raw = lfirst_node(RawStmt, lc);
        int start, end, line;
        ledger_statement_span(script, raw, &start, &end, &line);
        char* text = pnstrdup(script + start, end - start);
        if (observer)
            observer->before(observer->arg, raw, line, text);
        int rc = run_statement(what, script, raw, start, text);
        if (rc == SPI_ERROR_TRANSACTION)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
                     errmsg("%s failed at line %d: transaction control is not allowed in a "
                            "migration script",
                            what, line),
                     errhint("Each migration runs in one transaction. For statements "
                             "that can't run in a transaction block, start the file with "
                             "\"-- warden:no-transaction\".")));
        if (rc < 0)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("%s failed at line %d: statement not supported in a "
                                   "migration script: %s",
                                   what, line, SPI_result_code_string(rc))));
        if (ledger_access_exclusive_since == 0 &&
            ledger_statement_takes_access_exclusive(raw->stmt))
            ledger_access_exclusive_since = ledger_attempt_began;
        if (observer)
            observer->after(observer->arg);
    }
}

void ledger_run_script_as(Oid role, const char* what, const char* script)
{
    // As VACUUM runs as a table's owner: an error unwinds both the user switch and the
    // setting level with the (sub)transaction.
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(role, saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                     SECURITY_RESTRICTED_OPERATION);
    int nest_level = NewGUCNestLevel();
    ledger_run_script(what, script);
    AtEOXact_GUC(false, nest_level);
    SetUserIdAndSecContext(saved_user, saved_context);
}

// warden.split_script(script): (line, statement) for each statement, as the server's own
// parser sees them, so a client can run a non-transactional script at top level.
WARDEN_FUNCTION(warden_split_script)
{
    char* script = text_to_cstring(PG_GETARG_TEXT_PP(0));
    MemoryContext context = CurrentMemoryContext;
    List* volatile statements = NIL;
    PG_TRY();
    {
        statements = pg_parse_query(script);
    }
    PG_CATCH();
    {
        rethrow_with_line(take_error(context), "script", script, 0, NULL);
    }
    PG_END_TRY();

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    ListCell* lc;
    foreach (lc, statements) {
        RawStmt* raw = lfirst_node(RawStmt, lc);
        int end = statement_end(script, raw);
        int start = first_token(script, raw->stmt_location, end);
        Datum values[2] = {Int32GetDatum(line_at(script, start)),
                           PointerGetDatum(cstring_to_text_with_len(script + start, end - start))};
        bool nulls[2] = {false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
