// warden.maintenance_workers(): the launcher and per-database workers as shared memory
// shows them, for the health views.
#include "worker_shmem.h"

#include "bridge.h"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

static const char* state_name(WardenSlotState state)
{
    switch (state) {
    case WARDEN_SLOT_PENDING: return "pending";
    case WARDEN_SLOT_STARTING: return "starting";
    case WARDEN_SLOT_IDLE: return "idle";
    case WARDEN_SLOT_RUNNING: return "running jobs";
    case WARDEN_SLOT_NO_EXTENSION: return "extension not installed";
    case WARDEN_SLOT_OLD_EXTENSION: return "extension needs ALTER EXTENSION pg_warden UPDATE";
    case WARDEN_SLOT_BACKOFF: return "restarting after a crash";
    case WARDEN_SLOT_PAUSED: return "paused for DROP/ALTER DATABASE";
    case WARDEN_SLOT_DISABLED: return "disabled";
    }
    return "unknown";
}

static Datum timestamp_or_null(TimestampTz t, bool* isnull)
{
    *isnull = t == 0;
    return TimestampTzGetDatum(t);
}

WARDEN_FUNCTION(warden_maintenance_workers)
{
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    InitMaterializedSRF(fcinfo, 0);
    if (warden_workers == NULL)
        return (Datum) 0;

    // Copy under the lock, build tuples (which may ereport) after releasing it.
    int nslots = warden_workers->nslots;
    WardenDbSlot* slots = (WardenDbSlot*) palloc(sizeof(WardenDbSlot) * nslots);
    pid_t launcher_pid;
    TimestampTz launcher_started, launcher_wake;
    SpinLockAcquire(&warden_workers->mutex);
    memcpy(slots, warden_workers->slots, sizeof(WardenDbSlot) * nslots);
    launcher_pid = warden_workers->launcher_pid;
    launcher_started = warden_workers->launcher_started_at;
    launcher_wake = warden_workers->launcher_last_wake;
    SpinLockRelease(&warden_workers->mutex);

    Datum values[7];
    bool nulls[7];
    if (launcher_pid != 0) {
        memset(nulls, 0, sizeof nulls);
        values[0] = CStringGetTextDatum("launcher");
        values[1] = Int32GetDatum(launcher_pid);
        nulls[2] = true;
        values[3] = CStringGetTextDatum("running");
        values[4] = timestamp_or_null(launcher_started, &nulls[4]);
        values[5] = timestamp_or_null(launcher_wake, &nulls[5]);
        nulls[6] = true;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    for (int i = 0; i < nslots; i++) {
        WardenDbSlot* slot = &slots[i];
        if (!OidIsValid(slot->dboid))
            continue;
        memset(nulls, 0, sizeof nulls);
        values[0] = CStringGetTextDatum("worker");
        values[1] = Int32GetDatum(slot->pid);
        nulls[1] = slot->pid == 0;
        values[2] = NameGetDatum(&slot->datname);
        values[3] = CStringGetTextDatum(state_name(slot->state));
        values[4] = timestamp_or_null(slot->started_at, &nulls[4]);
        values[5] = timestamp_or_null(slot->last_wake, &nulls[5]);
        values[6] = Int32GetDatum(slot->restarts);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
