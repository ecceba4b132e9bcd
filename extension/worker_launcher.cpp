// The launcher: one background worker, connected to no database, that keeps one
// maintenance worker running per database where pg_warden is installed (or per database
// listed in warden.databases), restarts a worker that died with a growing delay, and
// stops workers when maintenance is disabled or a database is dropped.
//
// The loop has pg_cron's shape: check for interrupts, reload settings on SIGHUP, do the
// work in a short-lived memory context, wait on the latch with exit on postmaster death.
#include "../core/backoff.hpp"
#include "worker_shmem.h"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
}

// A database without pg_warden is looked at again this often even without a
// CREATE EXTENSION notice (e.g. pg_warden installed while the server ran without it).
static const int recheck_without_extension_ms = 300 * 1000;
static const int max_restart_delay_ms = 300 * 1000;

static BackgroundWorkerHandle** handles = NULL;
static bool warned_out_of_slots = false;

struct Candidate {
    Oid dboid;
    NameData datname;
};

static void launcher_detach(int code, Datum arg)
{
    SpinLockAcquire(&warden_workers->mutex);
    warden_workers->launcher_pid = 0;
    warden_workers->launcher_latch = NULL;
    SpinLockRelease(&warden_workers->mutex);
}

static bool listed_in_databases_setting(const char* datname)
{
    if (warden_databases == NULL || warden_databases[0] == '\0')
        return true;
    char* copy = pstrdup(warden_databases);
    List* names = NIL;
    if (!SplitGUCList(copy, ',', &names))
        return false;  // the setting's check hook keeps this from happening
    ListCell* lc;
    foreach (lc, names)
        if (strcmp((char*) lfirst(lc), datname) == 0)
            return true;
    return false;
}

// The databases a worker may be wanted in; pg_database is a shared catalog, readable
// without being connected to any database.
static List* candidate_databases(void)
{
    List* result = NIL;
    MemoryContext caller = CurrentMemoryContext;

    StartTransactionCommand();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL) {
        Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
        if (!db->datallowconn || db->datistemplate || database_is_invalid_form(db))
            continue;
        if (!listed_in_databases_setting(NameStr(db->datname)))
            continue;
        MemoryContext old = MemoryContextSwitchTo(caller);
        Candidate* c = (Candidate*) palloc(sizeof(Candidate));
        c->dboid = db->oid;
        c->datname = db->datname;
        result = lappend(result, c);
        MemoryContextSwitchTo(old);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    MemoryContextSwitchTo(caller);
    return result;
}

// Brings the slot table in line with the candidate list: new databases get a slot,
// slots of vanished databases are marked for stopping (dboid kept until stopped).
static void sync_slots(List* candidates, bool rescan, bool* gone)
{
    SpinLockAcquire(&warden_workers->mutex);
    for (int i = 0; i < warden_workers->nslots; i++) {
        WardenDbSlot* slot = &warden_workers->slots[i];
        gone[i] = false;
        if (!OidIsValid(slot->dboid))
            continue;
        bool found = false;
        ListCell* lc;
        foreach (lc, candidates)
            if (((Candidate*) lfirst(lc))->dboid == slot->dboid)
                found = true;
        gone[i] = !found;
        if (rescan && (slot->state == WARDEN_SLOT_NO_EXTENSION ||
                       slot->state == WARDEN_SLOT_OLD_EXTENSION))
            slot->retry_at = 0;
    }
    ListCell* lc;
    foreach (lc, candidates) {
        Candidate* c = (Candidate*) lfirst(lc);
        int free_slot = -1;
        bool known = false;
        for (int i = 0; i < warden_workers->nslots; i++) {
            if (warden_workers->slots[i].dboid == c->dboid) {
                known = true;
                warden_workers->slots[i].datname = c->datname;  // ALTER DATABASE RENAME
            }
            else if (!OidIsValid(warden_workers->slots[i].dboid) && free_slot < 0)
                free_slot = i;
        }
        if (known || free_slot < 0)
            continue;
        WardenDbSlot* slot = &warden_workers->slots[free_slot];
        memset(slot, 0, sizeof *slot);
        slot->dboid = c->dboid;
        slot->datname = c->datname;
        slot->state = WARDEN_SLOT_PENDING;
    }
    SpinLockRelease(&warden_workers->mutex);
}

static int restart_delay_ms(int crashes_in_a_row)
{
    return (int) warden::backoff_delay_ms(crashes_in_a_row, 1000, max_restart_delay_ms);
}

static void start_worker(int i)
{
    WardenDbSlot* slot = &warden_workers->slots[i];
    BackgroundWorker worker;

    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    // The launcher restarts it (with backoff), not the postmaster.
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_warden");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "warden_maintenance_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_warden maintenance worker for database %s",
             NameStr(slot->datname));
    snprintf(worker.bgw_type, BGW_MAXLEN, "pg_warden maintenance");
    worker.bgw_main_arg = Int32GetDatum(i);
    memcpy(worker.bgw_extra, &slot->dboid, sizeof(Oid));
    worker.bgw_notify_pid = MyProcPid;

    TimestampTz now = GetCurrentTimestamp();
    SpinLockAcquire(&warden_workers->mutex);
    slot->active = true;
    slot->exited_on_purpose = false;
    slot->state = WARDEN_SLOT_STARTING;
    slot->started_at = now;
    SpinLockRelease(&warden_workers->mutex);

    // The handle outlives the loop's memory context, which is reset every pass.
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    bool registered = RegisterDynamicBackgroundWorker(&worker, &handles[i]);
    MemoryContextSwitchTo(old);
    if (registered) {
        warned_out_of_slots = false;
        return;
    }
    handles[i] = NULL;
    TimestampTz retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);
    SpinLockAcquire(&warden_workers->mutex);
    slot->active = false;
    slot->state = WARDEN_SLOT_BACKOFF;
    slot->retry_at = retry_at;
    SpinLockRelease(&warden_workers->mutex);
    if (!warned_out_of_slots)
        ereport(WARNING,
                (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                 errmsg("pg_warden could not start a maintenance worker for database \"%s\": "
                        "out of background worker slots", NameStr(slot->datname)),
                 errhint("Raise max_worker_processes (one pg_warden worker per database, plus "
                         "the launcher), or list fewer databases in warden.databases.")));
    warned_out_of_slots = true;
}

// One pass over the slots: notice stopped workers, stop unwanted ones, start due ones.
// Returns how long the launcher may sleep.
static long manage_slots(const bool* gone)
{
    TimestampTz now = GetCurrentTimestamp();
    long sleep_ms = (long) warden_maintenance_naptime * 1000L;

    for (int i = 0; i < warden_workers->nslots; i++) {
        WardenDbSlot* slot = &warden_workers->slots[i];
        if (!OidIsValid(slot->dboid))
            continue;

        if (handles[i] != NULL) {
            pid_t pid;
            if (GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED) {
                pfree(handles[i]);
                handles[i] = NULL;
                bool crashed;
                SpinLockAcquire(&warden_workers->mutex);
                slot->active = false;
                slot->pid = 0;
                slot->latch = NULL;
                crashed = !slot->exited_on_purpose && slot->paused_until <= now && !gone[i] &&
                          warden_maintenance_enabled;
                if (crashed) {
                    slot->restarts++;
                    slot->crashes_in_a_row++;
                    slot->state = WARDEN_SLOT_BACKOFF;
                    slot->retry_at =
                        TimestampTzPlusMilliseconds(now, restart_delay_ms(slot->crashes_in_a_row));
                } else if (slot->state == WARDEN_SLOT_NO_EXTENSION ||
                           slot->state == WARDEN_SLOT_OLD_EXTENSION) {
                    slot->retry_at = TimestampTzPlusMilliseconds(now, recheck_without_extension_ms);
                } else {
                    slot->retry_at = 0;
                }
                int delay = restart_delay_ms(slot->crashes_in_a_row);
                SpinLockRelease(&warden_workers->mutex);
                if (crashed)
                    ereport(LOG, (errmsg("pg_warden maintenance worker for database \"%s\" "
                                         "exited unexpectedly; restarting it in %d ms",
                                         NameStr(slot->datname), delay)));
            } else {
                bool paused = slot->paused_until > now;
                if (gone[i] || paused || !warden_maintenance_enabled)
                    TerminateBackgroundWorker(handles[i]);
                continue;
            }
        }

        // No worker in this slot now.
        bool paused = slot->paused_until > now;
        if (gone[i]) {
            SpinLockAcquire(&warden_workers->mutex);
            slot->dboid = InvalidOid;
            SpinLockRelease(&warden_workers->mutex);
            continue;
        }
        if (!warden_maintenance_enabled || paused) {
            SpinLockAcquire(&warden_workers->mutex);
            slot->state = paused ? WARDEN_SLOT_PAUSED : WARDEN_SLOT_DISABLED;
            SpinLockRelease(&warden_workers->mutex);
            continue;
        }
        if (slot->state == WARDEN_SLOT_PAUSED || slot->state == WARDEN_SLOT_DISABLED)
            slot->retry_at = 0;
        if (slot->retry_at > now) {
            long wait = (long) ((slot->retry_at - now) / 1000);
            sleep_ms = Min(sleep_ms, Max(wait, 10L));
            continue;
        }
        start_worker(i);
    }
    return sleep_ms;
}

// After DROP EXTENSION a worker should notice now, not at its next naptime.
static void wake_workers(void)
{
    Latch** latches = (Latch**) palloc0(sizeof(Latch*) * warden_workers->nslots);
    SpinLockAcquire(&warden_workers->mutex);
    for (int i = 0; i < warden_workers->nslots; i++)
        latches[i] = warden_workers->slots[i].latch;
    SpinLockRelease(&warden_workers->mutex);
    for (int i = 0; i < warden_workers->nslots; i++)
        if (latches[i])
            SetLatch(latches[i]);
}

// A launcher that restarts (after pg_terminate_backend, say) has no handles for the
// workers its predecessor started; they are stopped so that none runs twice.
static void stop_orphaned_workers(void)
{
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);
    for (;;) {
        // The pids are copied under the spinlock and signalled after it: no system call
        // while a spinlock is held.
        int running = 0;
        pid_t* pids = (pid_t*) palloc(sizeof(pid_t) * warden_workers->nslots);  // fixed at startup
        SpinLockAcquire(&warden_workers->mutex);
        for (int i = 0; i < warden_workers->nslots; i++)
            if (warden_workers->slots[i].pid != 0)
                pids[running++] = warden_workers->slots[i].pid;
        SpinLockRelease(&warden_workers->mutex);
        for (int i = 0; i < running; i++)
            kill(pids[i], SIGTERM);
        pfree(pids);
        if (running == 0 || GetCurrentTimestamp() >= deadline)
            break;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    SpinLockAcquire(&warden_workers->mutex);
    for (int i = 0; i < warden_workers->nslots; i++) {
        warden_workers->slots[i].active = false;
        warden_workers->slots[i].state = WARDEN_SLOT_PENDING;
        warden_workers->slots[i].retry_at = 0;
    }
    SpinLockRelease(&warden_workers->mutex);
}

void warden_launcher_main(Datum main_arg)
{
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    TimestampTz started_at = GetCurrentTimestamp();
    SpinLockAcquire(&warden_workers->mutex);
    warden_workers->launcher_pid = MyProcPid;
    warden_workers->launcher_latch = MyLatch;
    warden_workers->launcher_started_at = started_at;
    warden_workers->rescan_requested = true;
    SpinLockRelease(&warden_workers->mutex);
    before_shmem_exit(launcher_detach, (Datum) 0);

    // No database: the launcher reads only the shared catalog pg_database.
    BackgroundWorkerInitializeConnection(NULL, NULL, 0);
    pgstat_report_appname("pg_warden launcher");

    handles = (BackgroundWorkerHandle**) MemoryContextAllocZero(
        TopMemoryContext, sizeof(BackgroundWorkerHandle*) * warden_workers->nslots);
    bool* gone = (bool*) MemoryContextAllocZero(TopMemoryContext,
                                                sizeof(bool) * warden_workers->nslots);
    MemoryContext loop_context =
        AllocSetContextCreate(TopMemoryContext, "pg_warden launcher loop", ALLOCSET_DEFAULT_SIZES);

    stop_orphaned_workers();
    ereport(LOG, (errmsg("pg_warden launcher started")));
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }

        MemoryContext old = MemoryContextSwitchTo(loop_context);
        bool rescan;
        TimestampTz woke_at = GetCurrentTimestamp();
        SpinLockAcquire(&warden_workers->mutex);
        rescan = warden_workers->rescan_requested;
        warden_workers->rescan_requested = false;
        warden_workers->launcher_last_wake = woke_at;
        SpinLockRelease(&warden_workers->mutex);

        pgstat_report_activity(STATE_RUNNING, "scanning databases");
        sync_slots(candidate_databases(), rescan, gone);
        long sleep_ms = manage_slots(gone);
        if (rescan)
            wake_workers();
        pgstat_report_activity(STATE_IDLE, NULL);

        MemoryContextSwitchTo(old);
        MemoryContextReset(loop_context);

        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
