// Settings, shared memory and launcher registration of the maintenance workers.
#include "worker_shmem.h"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
}

WardenWorkerShared* warden_workers = NULL;

bool warden_maintenance_enabled = true;
int warden_maintenance_naptime = 60;
char* warden_databases = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

// One slot per possible background worker: there can't be more workers than that.
static Size warden_workers_size(void)
{
    return add_size(offsetof(WardenWorkerShared, slots),
                    mul_size(sizeof(WardenDbSlot), max_worker_processes));
}

static void warden_workers_shmem_request(void)
{
    if (prev_shmem_request_hook)
        prev_shmem_request_hook();
    RequestAddinShmemSpace(warden_workers_size());
}

static void warden_workers_shmem_startup(void)
{
    bool found;

    if (prev_shmem_startup_hook)
        prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    warden_workers = (WardenWorkerShared*) ShmemInitStruct("pg_warden maintenance workers",
                                                            warden_workers_size(), &found);
    if (!found) {
        memset(warden_workers, 0, warden_workers_size());
        SpinLockInit(&warden_workers->mutex);
        warden_workers->nslots = max_worker_processes;
    }
    LWLockRelease(AddinShmemInitLock);
}

static bool check_databases(char** newval, void** extra, GucSource source)
{
    char* copy = pstrdup(*newval);
    List* names = NIL;
    bool ok = SplitGUCList(copy, ',', &names);
    list_free(names);
    pfree(copy);
    if (!ok)
        GUC_check_errdetail("List syntax is invalid; separate database names with commas.");
    return ok;
}

static void warden_define_worker_settings(void)
{
    DefineCustomBoolVariable(
        "warden.maintenance_enabled",
        "Runs pg_warden's maintenance jobs in background workers.",
        "When off at server start no launcher is started; turned off later, the "
        "per-database workers stop.",
        &warden_maintenance_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomIntVariable(
        "warden.maintenance_naptime",
        "Seconds the maintenance workers sleep between looks for due jobs.", NULL,
        &warden_maintenance_naptime, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
    DefineCustomStringVariable(
        "warden.databases",
        "Databases the maintenance workers serve (comma-separated); empty: every database "
        "where pg_warden is installed.",
        NULL, &warden_databases, "", PGC_SIGHUP, GUC_LIST_INPUT, check_databases, NULL, NULL);
}

static void warden_register_launcher(void)
{
    BackgroundWorker worker;

    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    // Never on a standby: the launcher starts when recovery ends (promotion).
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    // Any exit of the launcher, clean or not, is followed by a restart.
    worker.bgw_restart_time = 10;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_warden");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "warden_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_warden launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "pg_warden launcher");
    RegisterBackgroundWorker(&worker);
}

void warden_worker_init(void)
{
    warden_define_worker_settings();
    if (!process_shared_preload_libraries_in_progress)
        return;

    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = warden_workers_shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = warden_workers_shmem_startup;
    warden_install_utility_hook();

    if (warden_maintenance_enabled)
        warden_register_launcher();
}

void warden_workers_request_rescan(void)
{
    if (!warden_workers)
        return;
    Latch* launcher;
    SpinLockAcquire(&warden_workers->mutex);
    warden_workers->rescan_requested = true;
    launcher = warden_workers->launcher_latch;
    SpinLockRelease(&warden_workers->mutex);
    if (launcher)
        SetLatch(launcher);
}

static int find_slot(Oid dboid)
{
    for (int i = 0; i < warden_workers->nslots; i++)
        if (warden_workers->slots[i].dboid == dboid)
            return i;
    return -1;
}

// DROP DATABASE (and ALTER DATABASE RENAME / SET TABLESPACE) fail if another session is
// connected, so the worker steps aside first. The pause expires by itself should this
// backend die before resuming.
void warden_workers_pause(Oid dboid)
{
    if (!warden_workers || !OidIsValid(dboid))
        return;
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);
    for (;;) {
        bool busy = false;
        Latch* launcher = NULL;
        TimestampTz paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60000);
        SpinLockAcquire(&warden_workers->mutex);
        int i = find_slot(dboid);
        if (i >= 0) {
            WardenDbSlot* slot = &warden_workers->slots[i];
            slot->paused_until = paused_until;
            busy = slot->active;
        }
        launcher = warden_workers->launcher_latch;
        SpinLockRelease(&warden_workers->mutex);
        if (!busy || GetCurrentTimestamp() >= deadline)
            return;
        if (launcher)
            SetLatch(launcher);
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

void warden_workers_resume(Oid dboid)
{
    if (!warden_workers || !OidIsValid(dboid))
        return;
    Latch* launcher;
    SpinLockAcquire(&warden_workers->mutex);
    int i = find_slot(dboid);
    if (i >= 0)
        warden_workers->slots[i].paused_until = 0;
    launcher = warden_workers->launcher_latch;
    SpinLockRelease(&warden_workers->mutex);
    if (launcher)
        SetLatch(launcher);
}
