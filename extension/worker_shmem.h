// Shared state of the maintenance launcher and its per-database workers, and the
// settings that drive them (warden.maintenance_enabled, _naptime, warden.databases).
#pragma once

#include "pg_headers.h"

extern "C" {
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"
}

// What a per-database slot is doing; shown by warden.maintenance_workers.
enum WardenSlotState {
    WARDEN_SLOT_PENDING = 0,     // known database, no worker yet
    WARDEN_SLOT_STARTING,        // worker registered, not connected yet
    WARDEN_SLOT_IDLE,            // connected, sleeping until the next naptime
    WARDEN_SLOT_RUNNING,         // running CALL warden.run_maintenance()
    WARDEN_SLOT_NO_EXTENSION,    // pg_warden not installed there; rechecked on CREATE EXTENSION
    WARDEN_SLOT_OLD_EXTENSION,   // installed at a version without run_maintenance()
    WARDEN_SLOT_BACKOFF,         // worker died; restart after retry_at
    WARDEN_SLOT_PAUSED,          // DROP/ALTER DATABASE needs the database to itself
    WARDEN_SLOT_DISABLED,        // warden.maintenance_enabled = off
};

struct WardenDbSlot {
    Oid dboid;                   // InvalidOid: slot free
    NameData datname;
    WardenSlotState state;
    bool active;                 // the launcher holds a handle it has not seen stop
    bool exited_on_purpose;      // set by the worker before a deliberate exit
    pid_t pid;
    Latch* latch;
    int restarts;                // unexpected exits over the slot's life
    int crashes_in_a_row;        // drives the restart backoff; reset by a good run
    TimestampTz started_at;
    TimestampTz last_wake;
    TimestampTz retry_at;        // launcher: don't start before this
    TimestampTz paused_until;    // set by a backend running DROP/ALTER DATABASE
};

struct WardenWorkerShared {
    slock_t mutex;               // guards everything below; never held across ereport
    pid_t launcher_pid;
    Latch* launcher_latch;
    TimestampTz launcher_started_at;
    TimestampTz launcher_last_wake;
    bool rescan_requested;       // CREATE/ALTER/DROP EXTENSION or CREATE DATABASE committed
    int nslots;
    WardenDbSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

// NULL unless pg_warden is in shared_preload_libraries.
extern WardenWorkerShared* warden_workers;

extern bool warden_maintenance_enabled;
extern int warden_maintenance_naptime;
extern char* warden_databases;

// From _PG_init: settings, shared memory, the launcher and the utility hook.
void warden_worker_init(void);

// Asks the launcher to look at databases again, and wakes every worker.
void warden_workers_request_rescan(void);

// Keeps the launcher from running a worker in dboid and waits (bounded) until none is
// connected; warden_workers_resume lets it start again.
void warden_workers_pause(Oid dboid);
void warden_workers_resume(Oid dboid);

// ProcessUtility hook setup (worker_utility_hook.cpp).
void warden_install_utility_hook(void);

extern "C" {
PGDLLEXPORT void warden_launcher_main(Datum main_arg);
PGDLLEXPORT void warden_maintenance_main(Datum main_arg);
}
