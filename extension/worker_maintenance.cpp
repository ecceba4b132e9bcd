// The per-database maintenance worker: every warden.maintenance_naptime seconds it runs
// `CALL warden.run_maintenance()` exactly as psql or pg_cron would, as a top-level
// statement, so the procedure may commit between jobs and the jobs per batch.
//
// The worker connects as the bootstrap superuser but runs no job with those rights:
// run_maintenance() runs each job as the role that owns it. Its one statement names a
// schema-qualified procedure without arguments, so nothing in it resolves through the
// search_path; the statements run_maintenance() runs pin the path themselves. The
// session's own search_path (the database's default) is what jobs other than the
// built-in ones run with, as a login of their owner would.
#include "worker_shmem.h"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

static int my_slot = -1;
static MemoryContext statement_context = NULL;

static WardenDbSlot* slot(void)
{
    return &warden_workers->slots[my_slot];
}

static void set_state(WardenSlotState state)
{
    SpinLockAcquire(&warden_workers->mutex);
    slot()->state = state;
    SpinLockRelease(&warden_workers->mutex);
}

static void worker_detach(int code, Datum arg)
{
    SpinLockAcquire(&warden_workers->mutex);
    slot()->pid = 0;
    slot()->latch = NULL;
    SpinLockRelease(&warden_workers->mutex);
}

// A deliberate exit: the launcher reads the state and does not count it as a crash.
static void exit_on_purpose(WardenSlotState state)
{
    SpinLockAcquire(&warden_workers->mutex);
    slot()->exited_on_purpose = true;
    slot()->state = state;
    SpinLockRelease(&warden_workers->mutex);
    proc_exit(0);
}

enum class Installed { no, without_jobs, yes };

static Installed extension_installed(void)
{
    Installed result = Installed::no;
    StartTransactionCommand();
    if (OidIsValid(get_extension_oid("pg_warden", true))) {
        // run_maintenance() of this library needs warden._job_start (1.2), which decides
        // as whom each job runs: an older version installed here waits for its UPDATE.
        List* name = list_make2(makeString(pstrdup("warden")), makeString(pstrdup("_job_start")));
        result = FuncnameGetCandidates(name, 2, NIL, false, false, false, true) != NULL
                     ? Installed::yes
                     : Installed::without_jobs;
    }
    CommitTransactionCommand();
    return result;
}

// Runs one SQL statement the way exec_simple_query does, in an unnamed portal at top
// level, so that CALL is non-atomic. An error is logged and the transaction aborted;
// the worker carries on.
static bool run_top_level(const char* sql)
{
    MemoryContext worker_context = CurrentMemoryContext;
    volatile bool ok = true;

    MemoryContextReset(statement_context);
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    debug_query_string = sql;
    pgstat_report_activity(STATE_RUNNING, sql);
    PG_TRY();
    {
        // Parse trees and plans must outlive the commits made inside the CALL.
        MemoryContextSwitchTo(statement_context);
        RawStmt* raw = linitial_node(RawStmt, pg_parse_query(sql));
        PushActiveSnapshot(GetTransactionSnapshot());
        List* queries = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
        List* plans = pg_plan_queries(queries, sql, CURSOR_OPT_PARALLEL_OK, NULL);
        PopActiveSnapshot();

        Portal portal = CreatePortal("", true, true);
        portal->visible = false;
        PortalDefineQuery(portal, NULL, sql, CreateCommandTag(raw->stmt), plans, NULL);
        PortalStart(portal, NULL, 0, InvalidSnapshot);
        DestReceiver* receiver = CreateDestReceiver(DestNone);
        QueryCompletion qc;
        (void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
        receiver->rDestroy(receiver);
        PortalDrop(portal, false);
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(worker_context);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
        disable_all_timeouts(false);
        QueryCancelPending = false;
        // A job lock left behind by failed bookkeeping would keep pg_cron from ever
        // running that job; the worker holds no other session lock.
        LockReleaseAll(USER_LOCKMETHOD, true);
        ok = false;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(worker_context);
    debug_query_string = NULL;
    pgstat_report_activity(STATE_IDLE, NULL);
    pgstat_report_stat(true);
    return ok;
}

void warden_maintenance_main(Datum main_arg)
{
    Oid dboid;

    my_slot = DatumGetInt32(main_arg);
    memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    TimestampTz started_at = GetCurrentTimestamp();  // no system call under the spinlock
    SpinLockAcquire(&warden_workers->mutex);
    bool mine = slot()->dboid == dboid;
    if (mine) {
        slot()->pid = MyProcPid;
        slot()->latch = MyLatch;
        slot()->started_at = started_at;
    }
    SpinLockRelease(&warden_workers->mutex);
    if (!mine)
        proc_exit(0);
    before_shmem_exit(worker_detach, (Datum) 0);

    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    pgstat_report_appname("pg_warden maintenance");
    statement_context = AllocSetContextCreate(TopMemoryContext, "pg_warden maintenance statement",
                                              ALLOCSET_DEFAULT_SIZES);
    MemoryContext loop_context = AllocSetContextCreate(
        TopMemoryContext, "pg_warden maintenance loop", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(loop_context);

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        TimestampTz woke_at = GetCurrentTimestamp();
        SpinLockAcquire(&warden_workers->mutex);
        slot()->last_wake = woke_at;
        SpinLockRelease(&warden_workers->mutex);

        if (warden_maintenance_enabled) {
            switch (extension_installed()) {
            case Installed::no:
                exit_on_purpose(WARDEN_SLOT_NO_EXTENSION);
                break;
            case Installed::without_jobs:
                exit_on_purpose(WARDEN_SLOT_OLD_EXTENSION);
                break;
            case Installed::yes:
                set_state(WARDEN_SLOT_RUNNING);
                if (run_top_level("CALL warden.run_maintenance()")) {
                    SpinLockAcquire(&warden_workers->mutex);
                    slot()->crashes_in_a_row = 0;
                    SpinLockRelease(&warden_workers->mutex);
                }
                break;
            }
        }
        set_state(WARDEN_SLOT_IDLE);
        MemoryContextReset(loop_context);

        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                         (long) warden_maintenance_naptime * 1000L, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
