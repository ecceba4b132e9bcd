// warden.run_job(name) and warden.run_maintenance(): the one code path every driver
// (the worker, pg_cron, psql) uses to run maintenance jobs.
//
// A run is bookkept in its own transactions around the job: a 'running' row and the
// job's session-level advisory lock are committed before the job starts, and the
// outcome after it ends. The job is CALLed non-atomically, so a job that commits per
// batch (warden.expire_rows) may do so. Its errors can't be caught with a
// subtransaction (a job that commits can't run inside one), so they are caught here,
// at the top of the call chain, the way postgres.c does it: the transaction is aborted,
// a new one started, the failure recorded, and the next job runs. That is only sound
// when nothing else is on the stack, hence the "top-level CALL" rule.
//
// Who runs what. The bookkeeping runs as the caller, with search_path pinned in a GUC
// nest level around each statement (which also names every object with its schema). The
// job runs as the role that owns it (warden._job_start decides who that is and whether
// the caller may run it), session_user included, under SECURITY_RESTRICTED_OPERATION, so that it leaves nothing
// behind in this session (temporary tables, SET ROLE) for the next job or the caller to
// trip over. A built-in job runs as pg_warden's owner with search_path pinned for the
// whole job; other jobs keep the caller's search_path, which is put back after each job
// in case the job changed it. The pin is a session-level SET rather than a nest level
// because the job may COMMIT, and a commit pops nest levels.
#include "bridge.h"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

// Rows reported by the running job through warden.report_job_rows(); a static survives
// the job's commits.
static int64 reported_rows = 0;
static bool rows_reported = false;

WARDEN_FUNCTION(warden_report_job_rows)
{
    reported_rows += PG_GETARG_INT64(0);
    rows_reported = true;
    PG_RETURN_VOID();
}

static void require_top_level_call(FunctionCallInfo fcinfo, const char* what)
{
    bool atomic = true;
    if (fcinfo->context && IsA(fcinfo->context, CallContext))
        atomic = ((CallContext*) fcinfo->context)->atomic;
    if (atomic)
        ereport(ERROR,
                (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                 errmsg("%s cannot run inside a transaction block or a function", what),
                 errdetail("It commits before and after each job."),
                 errhint("Run CALL %s on its own, outside BEGIN ... COMMIT.", what)));
    if (SPI_inside_nonatomic_context())
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
                 errmsg("%s must be called by a top-level CALL", what),
                 errdetail("After a job fails, only a top-level caller can roll back and go on "
                           "with the next job."),
                 errhint("Call it from psql, pg_cron or a script, not from a procedure or DO block.")));
}

static const char* const pinned_search_path = "pg_catalog, pg_temp";

// The caller's search_path when run_job / run_maintenance began: what jobs other than the
// built-in ones run with, and what the session gets back after each job.
static char* caller_search_path = NULL;

static void remember_caller_search_path(MemoryContext context)
{
    caller_search_path = MemoryContextStrdup(context,
                                             GetConfigOptionByName("search_path", NULL, false));
}

// A session-level SET (transactional: undone if the current transaction aborts).
static void set_session_search_path(const char* value)
{
    if (strcmp(GetConfigOptionByName("search_path", NULL, false), value) != 0)
        (void) set_config_option("search_path", value, PGC_USERSET, PGC_S_SESSION,
                                 GUC_ACTION_SET, true, 0, false);
}

// Bookkeeping statements run with search_path pinned for their duration only.
static int pin_search_path(void)
{
    int nest_level = NewGUCNestLevel();
    (void) set_config_option("search_path", pinned_search_path, PGC_USERSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
    return nest_level;
}

struct JobStart {
    bool run;
    int64 run_id;
    int64 budget_ms;
    Oid run_as;
    bool builtin;
    Oid proc;
    char call_sql[2 * NAMEDATALEN * 2 + 32];
};

// After the library was upgraded and before ALTER EXTENSION UPDATE, the SQL objects are
// 1.1's, whose bookkeeping would run every job as the bootstrap superuser: refuse instead.
static void require_job_owner_objects(void)
{
    List* fn = list_make2(makeString(pstrdup("warden")), makeString(pstrdup("_job_start")));
    if (FuncnameGetCandidates(fn, 2, NIL, false, false, false, true) == NULL)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_warden's SQL objects are older than its library: no job runs"),
                        errhint("Run ALTER EXTENSION pg_warden UPDATE.")));
}

// Runs one bookkeeping statement in its own SPI connection and commits it.
static void begin_job(const char* name, bool only_if_due, JobStart* out)
{
    require_job_owner_objects();
    Oid types[2] = {TEXTOID, BOOLOID};
    Datum values[2] = {CStringGetTextDatum(name), BoolGetDatum(only_if_due)};

    SPI_connect_ext(SPI_OPT_NONATOMIC);
    int nest_level = pin_search_path();
    if (SPI_execute_with_args("SELECT s.run_id, s.call_sql, s.budget_ms, s.run_as, s.builtin, "
                              "s.proc FROM warden._job_start($1, $2) s",
                              2, types, values, NULL, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "warden._job_start failed");
    out->run = SPI_processed > 0;
    if (out->run) {
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        out->run_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
        strlcpy(out->call_sql, SPI_getvalue(tuple, desc, 2), sizeof out->call_sql);
        out->budget_ms = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
        out->run_as = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
        out->builtin = DatumGetBool(SPI_getbinval(tuple, desc, 5, &isnull));
        out->proc = DatumGetObjectId(SPI_getbinval(tuple, desc, 6, &isnull));
    }
    AtEOXact_GUC(true, nest_level);
    SPI_commit();
    SPI_finish();
}

static void finish_job(int64 run_id, const char* status, const char* message,
                       const char* sqlstate)
{
    Oid types[5] = {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
    Datum values[5] = {Int64GetDatum(run_id), CStringGetTextDatum(status),
                       Int64GetDatum(reported_rows),
                       message ? CStringGetTextDatum(message) : (Datum) 0,
                       sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0};
    char nulls[6] = {' ', ' ', rows_reported ? ' ' : 'n', message ? ' ' : 'n',
                     sqlstate ? ' ' : 'n', '\0'};

    SPI_connect_ext(SPI_OPT_NONATOMIC);
    int nest_level = pin_search_path();
    if (SPI_execute_with_args("SELECT warden._job_finish($1, $2, $3, $4, $5)", 5, types, values,
                              nulls, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "warden._job_finish failed");
    AtEOXact_GUC(true, nest_level);
    SPI_commit();
    SPI_finish();
}

// _job_start checked the procedure and committed; until the job's transaction locks it,
// the owner of its schema could have dropped it and put another in its place under the
// same name. Locked now (DROP waits), it must still be the one checked, owned by a role
// with the rights of the role the job runs as.
static void lock_job_procedure(const JobStart* start)
{
    LockDatabaseObject(ProcedureRelationId, start->proc, 0, AccessShareLock);
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(start->proc));
    if (!HeapTupleIsValid(tuple))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
                        errmsg("the job's procedure was dropped as the job started")));
    Oid owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
    ReleaseSysCache(tuple);
    if (!has_privs_of_role(owner, start->run_as))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("the job's procedure changed hands as the job started"),
                        errdetail("Its owner lacks the rights of the role the job runs as.")));
}

struct CallerIdentity {
    bool session_switched;
    Oid session_user;
    Oid outer_user;
    Oid user;
    int security;
};

// The job runs as if its owner had logged in, as pg_cron's jobs do: session_user too is
// the owner, so that code relying on session_user (a SECURITY DEFINER function checking
// who called it) sees the owner and not the driver, which may be a superuser. Only a
// session that logged in as a superuser (the worker, a superuser's pg_cron job or psql)
// may change its session user; in any other session the job's owner is the session's
// own role or one it is a member of, or the job is a built-in one, and session_user
// stays the role that logged in.
static void become_job_owner(Oid owner, CallerIdentity* caller)
{
    caller->session_switched = false;
    caller->session_user = GetSessionUserId();
    caller->outer_user = GetOuterUserId();
    GetUserIdAndSecContext(&caller->user, &caller->security);
    if (owner != caller->session_user && superuser_arg(GetAuthenticatedUserId())) {
        SetSessionAuthorization(owner, superuser_arg(owner));
        caller->session_switched = true;
    }
    SetUserIdAndSecContext(owner, caller->security | SECURITY_LOCAL_USERID_CHANGE |
                                      SECURITY_RESTRICTED_OPERATION);
}

static void become_caller_again(const CallerIdentity* caller)
{
    if (caller->session_switched) {
        SetSessionAuthorization(caller->session_user, superuser_arg(caller->session_user));
        if (caller->outer_user != caller->session_user)
            SetCurrentRoleId(caller->outer_user, superuser_arg(caller->outer_user));
    }
    SetUserIdAndSecContext(caller->user, caller->security);
}

static void run_one_job(const char* name, bool only_if_due, MemoryContext context)
{
    JobStart start;
    begin_job(name, only_if_due, &start);
    MemoryContextSwitchTo(context);
    if (!start.run)
        return;

    // The time budget rides on the statement timeout, which the caller's own
    // statement_timeout may also be using: remember it and put it back afterwards.
    bool outer_timeout = get_timeout_active(STATEMENT_TIMEOUT);
    TimestampTz outer_deadline = outer_timeout ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), start.budget_ms);
    if (!outer_timeout || deadline < outer_deadline)
        enable_timeout_at(STATEMENT_TIMEOUT, deadline);

    reported_rows = 0;
    rows_reported = false;
    if (start.builtin)
        set_session_search_path(pinned_search_path);
    CallerIdentity caller;
    become_job_owner(start.run_as, &caller);
    ErrorData* volatile error = NULL;
    PG_TRY();
    {
        SPIExecuteOptions options;
        memset(&options, 0, sizeof options);
        options.allow_nonatomic = true;
        lock_job_procedure(&start);
        SPI_connect_ext(SPI_OPT_NONATOMIC);
        EnsurePortalSnapshotExists();
        if (SPI_execute_extended(start.call_sql, &options) < 0)
            elog(ERROR, "could not run \"%s\"", start.call_sql);
        SPI_finish();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        error = CopyErrorData();
        FlushErrorState();
        // The abort clears the snapshot stack; the portal must not point into it.
        if (ActivePortal)
            ActivePortal->portalSnapshot = NULL;
        AbortOutOfAnyTransaction();
        StartTransactionCommand();
        MemoryContextSwitchTo(context);
    }
    PG_END_TRY();
    // The abort only goes back to the user of the job's last transaction, which is the
    // job's owner once the job has committed.
    become_caller_again(&caller);
    set_session_search_path(caller_search_path);
    disable_timeout(STATEMENT_TIMEOUT, false);
    // A budget that ran out just as the job returned must not cancel the bookkeeping.
    if (error == NULL && get_timeout_indicator(STATEMENT_TIMEOUT, true))
        QueryCancelPending = false;

    if (error == NULL) {
        finish_job(start.run_id, "succeeded", NULL, NULL);
    } else {
        bool over_budget = error->sqlerrcode == ERRCODE_QUERY_CANCELED &&
                           GetCurrentTimestamp() >= deadline;
        const char* status = error->sqlerrcode == ERRCODE_QUERY_CANCELED ? "cancelled" : "failed";
        char* message = over_budget
                            ? psprintf("exceeded its time budget of %lld ms and was cancelled",
                                       (long long) start.budget_ms)
                        : error->detail ? psprintf("%s (%s)", error->message, error->detail)
                                        : pstrdup(error->message);
        finish_job(start.run_id, status, message, unpack_sql_state(error->sqlerrcode));
        MemoryContextSwitchTo(context);
        // A cancel that is not the job's budget (pg_cancel_backend, Ctrl-C, the caller's
        // statement_timeout) is meant for the whole CALL: stop after recording it.
        if (error->sqlerrcode == ERRCODE_QUERY_CANCELED && !over_budget)
            ereport(ERROR,
                    (errcode(ERRCODE_QUERY_CANCELED), errmsg("%s", error->message),
                     errdetail("Maintenance job \"%s\" was cancelled and recorded as such; "
                               "no further job ran.", name)));
        ereport(WARNING,
                (errcode(error->sqlerrcode),
                 errmsg("maintenance job \"%s\" %s: %s", name, status, message),
                 errhint("See warden.job_runs; the job is retried with backoff.")));
        FreeErrorData(error);
    }
    MemoryContextSwitchTo(context);
    if (outer_timeout)
        enable_timeout_at(STATEMENT_TIMEOUT, outer_deadline);
}

WARDEN_FUNCTION(warden_run_job)
{
    require_top_level_call(fcinfo, "warden.run_job()");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("job name must not be null"),
                        errhint("SELECT name FROM warden.jobs lists the jobs.")));
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("maintenance jobs do not run while the server is in recovery"),
                        errhint("Run them on the primary; a standby starts after promotion.")));
    MemoryContext context = CurrentMemoryContext;
    char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
    remember_caller_search_path(context);
    run_one_job(name, false, context);
    PG_RETURN_VOID();
}

WARDEN_FUNCTION(warden_run_maintenance)
{
    require_top_level_call(fcinfo, "warden.run_maintenance()");
    if (RecoveryInProgress()) {
        ereport(NOTICE, (errmsg("server is in recovery; maintenance jobs run only on a primary")));
        PG_RETURN_VOID();
    }
    MemoryContext context = CurrentMemoryContext;
    remember_caller_search_path(context);

    SPI_connect_ext(SPI_OPT_NONATOMIC);
    int nest_level = pin_search_path();
    if (SPI_execute("SELECT warden._mark_crashed_runs()", false, 0) != SPI_OK_SELECT ||
        SPI_execute("SELECT j.name FROM warden.jobs j WHERE j.enabled "
                    "AND j.next_run_at OPERATOR(pg_catalog.<=) pg_catalog.now() "
                    "ORDER BY j.next_run_at, j.name",
                    false, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.jobs");
    uint64 njobs = SPI_processed;
    char** names = (char**) MemoryContextAlloc(context, sizeof(char*) * (njobs + 1));
    for (uint64 i = 0; i < njobs; i++)
        names[i] = MemoryContextStrdup(context, SPI_getvalue(SPI_tuptable->vals[i],
                                                              SPI_tuptable->tupdesc, 1));
    AtEOXact_GUC(true, nest_level);
    SPI_commit();
    SPI_finish();
    MemoryContextSwitchTo(context);

    for (uint64 i = 0; i < njobs; i++) {
        CHECK_FOR_INTERRUPTS();
        run_one_job(names[i], true, context);
    }
    PG_RETURN_VOID();
}
