// Shared memory of account locking (see lockout_shmem.h): a partitioned hash of counters,
// a list of the entries changed since their writer last committed them, a ring of events
// and one writer slot per database.
//
// Lock order: a partition lock, then the dirty lock. The ring lock is never held with
// either. No lock is held across a table read: an entry missing from memory is read from
// its table first and entered afterwards, unless an eviction happened in between (the
// generation counter tells), which could have left the read older than the entry was.
#include "lockout_shmem.h"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
}

bool lockout_am_writer = false;

namespace {

constexpr int PARTITIONS = 16;
constexpr int DIRTY_LOCK = PARTITIONS;
constexpr int RING_LOCK = PARTITIONS + 1;
constexpr int WRITER_SLOTS = 64;
constexpr int IDLE_EVICT_SECONDS = 10;
// A writer that was asked to start and has not attached in this time is asked again.
constexpr int WRITER_START_TIMEOUT_MS = 10000;
// How long a failure waits for room in a full event queue before it gives up.
constexpr int QUEUE_WAIT_MS = 10000;

enum SlotState : uint8 { SLOT_FREE = 0, SLOT_FILLED, SLOT_TAKEN };

struct WriterSlot {
    Oid db;                  // InvalidOid: free
    pid_t pid;
    Latch* latch;
    bool exiting;            // the writer is checking that nothing is left before it exits
    bool rewake;             // ... and was woken meanwhile, so it stays
    TimestampTz start_requested;
};

struct Shared {
    pg_atomic_uint64 generation;   // bumped by every eviction and external change
    uint64 change_counter;         // dirty lock
    dlist_head dirty;              // dirty lock
    uint64 ring_head;              // ring lock
    uint64 ring_tail;              // ring lock
    int ring_size;
    ConditionVariable progress;    // the writers made room in the ring or committed
    slock_t writers_mutex;         // also guards the role fields below
    WriterSlot writers[WRITER_SLOTS];
    Latch* role_latch;
    bool roles_loaded;
    bool roles_persisted;
    NameData bootstrap_superuser;
    LockoutRolePolicy role_policy;
    LockoutEvent ring[FLEXIBLE_ARRAY_MEMBER];
};

Shared* shared;
HTAB* counters;
LWLockPadded* locks;
int capacity = 16384;
int queue_size = 4096;
shmem_request_hook_type prev_request_hook;
shmem_startup_hook_type prev_startup_hook;

Size shared_size()
{
    return add_size(offsetof(Shared, ring), mul_size(sizeof(LockoutEvent), queue_size));
}

void request_hook()
{
    if (prev_request_hook)
        prev_request_hook();
    RequestAddinShmemSpace(shared_size());
    RequestAddinShmemSpace(hash_estimate_size(capacity, sizeof(LockoutEntry)));
    RequestNamedLWLockTranche("pg_warden lockout", PARTITIONS + 2);
}

void startup_hook()
{
    if (prev_startup_hook)
        prev_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = static_cast<Shared*>(ShmemInitStruct("pg_warden lockout", shared_size(), &found));
    if (!found) {
        memset(shared, 0, shared_size());
        pg_atomic_init_u64(&shared->generation, 0);
        dlist_init(&shared->dirty);
        shared->ring_size = queue_size;
        ConditionVariableInit(&shared->progress);
        SpinLockInit(&shared->writers_mutex);
    }
    HASHCTL info;
    memset(&info, 0, sizeof info);
    info.keysize = sizeof(LockoutKey);
    info.entrysize = sizeof(LockoutEntry);
    info.num_partitions = PARTITIONS;
    counters = ShmemInitHash("pg_warden lockout counters", capacity, capacity, &info,
                             HASH_ELEM | HASH_BLOBS | HASH_PARTITION);
    locks = GetNamedLWLockTranche("pg_warden lockout");
    LWLockRelease(AddinShmemInitLock);
}

// dlist_container's and dlist_foreach's type checks do not compile as C++.
LockoutEntry* entry_of(dlist_node* node)
{
    return reinterpret_cast<LockoutEntry*>(reinterpret_cast<char*>(node) -
                                           offsetof(LockoutEntry, dirty_node));
}

LWLock* partition_lock(uint32 hashcode)
{
    return &locks[hashcode % PARTITIONS].lock;
}

LWLock* lock_of(LockoutEntry* e)
{
    return partition_lock(e->hashcode);
}

// Caller holds the entry's partition lock exclusively.
void mark_dirty(LockoutEntry* e)
{
    e->version++;
    LWLockAcquire(&locks[DIRTY_LOCK].lock, LW_EXCLUSIVE);
    shared->change_counter++;
    if (!e->dirty) {
        e->dirty = true;
        e->dirty_stamp = shared->change_counter;
        dlist_push_tail(&shared->dirty, &e->dirty_node);
    }
    LWLockRelease(&locks[DIRTY_LOCK].lock);
}

// Clears failures, window, lockouts and lock (the time of the last failure stays).
// Caller holds the entry's partition lock exclusively.
void reset_counter(LockoutEntry* e, TimestampTz now)
{
    TimestampTz last_failure = e->state.last_failure_at;
    bool has_last_failure = e->state.has_last_failure;
    memset(&e->state, 0, sizeof e->state);
    e->state.last_failure_at = last_failure;
    e->state.has_last_failure = has_last_failure;
    e->touched = now;
    mark_dirty(e);
}

// Caller holds the entry's partition lock exclusively.
void remove_entry(LockoutEntry* e)
{
    if (e->dirty) {
        LWLockAcquire(&locks[DIRTY_LOCK].lock, LW_EXCLUSIVE);
        dlist_delete(&e->dirty_node);
        e->dirty = false;
        LWLockRelease(&locks[DIRTY_LOCK].lock);
    }
    LockoutKey key = e->key;
    hash_search_with_hash_value(counters, &key, e->hashcode, HASH_REMOVE, nullptr);
}

bool register_writer(Oid db)
{
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    worker.bgw_main_arg = ObjectIdGetDatum(db);
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_warden");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "warden_lockout_writer_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_warden lockout writer for database %u", db);
    snprintf(worker.bgw_type, BGW_MAXLEN, "pg_warden lockout writer");
    if (RegisterDynamicBackgroundWorker(&worker, nullptr))
        return true;
    SpinLockAcquire(&shared->writers_mutex);
    for (WriterSlot& s : shared->writers)
        if (s.db == db && s.pid == 0)
            s.db = InvalidOid;
    SpinLockRelease(&shared->writers_mutex);
    ereport(WARNING,
            (errmsg("pg_warden: no background worker slot for the lockout writer of database %u", db),
             errdetail("Login failures and locks are in force but not yet written to disk."),
             errhint("Raise max_worker_processes.")));
    return false;
}

// Wakes the writer of db, starting one if there is none; false when there is none and
// none could be started. Roles (db 0) have the role lockout worker, started with the
// server.
bool wake_writer(Oid db)
{
    if (db == InvalidOid) {
        SpinLockAcquire(&shared->writers_mutex);
        Latch* role_latch = shared->role_latch;
        SpinLockRelease(&shared->writers_mutex);
        if (role_latch != nullptr)
            SetLatch(role_latch);
        return role_latch != nullptr;
    }
    TimestampTz now = GetCurrentTimestamp();
    Latch* latch = nullptr;
    bool start = false;
    SpinLockAcquire(&shared->writers_mutex);
    WriterSlot* slot = nullptr;
    WriterSlot* free_slot = nullptr;
    for (WriterSlot& s : shared->writers) {
        if (s.db == db)
            slot = &s;
        else if (s.db == InvalidOid && free_slot == nullptr)
            free_slot = &s;
    }
    if (slot != nullptr) {
        if (slot->exiting)
            slot->rewake = true;
        else if (slot->latch != nullptr)
            latch = slot->latch;
        else if (TimestampDifferenceExceeds(slot->start_requested, now, WRITER_START_TIMEOUT_MS)) {
            slot->start_requested = now;
            start = true;
        }
    } else if (free_slot != nullptr) {
        free_slot->db = db;
        free_slot->pid = 0;
        free_slot->latch = nullptr;
        free_slot->exiting = false;
        free_slot->rewake = false;
        free_slot->start_requested = now;
        start = true;
    }
    SpinLockRelease(&shared->writers_mutex);
    if (latch != nullptr)
        SetLatch(latch);
    if (start)
        return register_writer(db);
    return slot != nullptr || free_slot != nullptr;
}

bool events_pending(Oid db, uint64 below)
{
    bool pending = false;
    LWLockAcquire(&locks[RING_LOCK].lock, LW_SHARED);
    uint64 end = Min(below, shared->ring_head);
    for (uint64 seq = shared->ring_tail; seq < end && !pending; seq++) {
        const LockoutEvent& ev = shared->ring[seq % shared->ring_size];
        pending = ev.slot_state != SLOT_FREE && ev.db == db;
    }
    LWLockRelease(&locks[RING_LOCK].lock);
    return pending;
}

bool entries_pending(Oid db, uint64 stamp_at_most)
{
    bool pending = false;
    LWLockAcquire(&locks[DIRTY_LOCK].lock, LW_SHARED);
    for (dlist_node* node = dlist_is_empty(&shared->dirty) ? nullptr : shared->dirty.head.next;
         node != nullptr && node != &shared->dirty.head; node = node->next) {
        LockoutEntry* e = entry_of(node);
        if (e->key.db == db && e->dirty_stamp <= stamp_at_most) {
            pending = true;
            break;
        }
    }
    LWLockRelease(&locks[DIRTY_LOCK].lock);
    return pending;
}

// Removes clean entries untouched since cutoff (every clean one with cutoff 0). A role's
// lock is never dropped: the authentication hook could not read it back.
void evict(TimestampTz cutoff)
{
    TimestampTz now = GetCurrentTimestamp();
    for (int i = 0; i < PARTITIONS; i++)
        LWLockAcquire(&locks[i].lock, LW_EXCLUSIVE);
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, counters);
    while (auto* e = static_cast<LockoutEntry*>(hash_seq_search(&scan)))
        if (!e->dirty && (cutoff == 0 || e->touched < cutoff) &&
            !(e->key.kind == LOCKOUT_ROLE && e->state.has_until && e->state.locked_until > now))
            remove_entry(e);
    pg_atomic_fetch_add_u64(&shared->generation, 1);
    for (int i = PARTITIONS - 1; i >= 0; i--)
        LWLockRelease(&locks[i].lock);
}

}  // namespace

bool lockout_shared_ready(void)
{
    return shared != nullptr;
}

void lockout_shmem_init(void)
{
    DefineCustomIntVariable(
        "warden.lockout_entries",
        "Counters of principals and source addresses account locking keeps in shared memory.",
        "Idle counters already written are dropped to make room; they are read back on use.",
        &capacity, 16384, 128, 4 * 1024 * 1024, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "warden.lockout_event_queue",
        "Security events of failed logins that may wait in shared memory for their writer.",
        "A failure waits for room when the queue is full.",
        &queue_size, 4096, 64, 1024 * 1024, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    if (!process_shared_preload_libraries_in_progress)
        return;
    prev_request_hook = shmem_request_hook;
    shmem_request_hook = request_hook;
    prev_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_hook;
}

const char* lockout_event_type_name(uint8 type)
{
    switch (type) {
    case LOCKOUT_EV_LOCKED: return "locked";
    case LOCKOUT_EV_SOURCE_THROTTLED: return "source_throttled";
    case LOCKOUT_EV_ROLE_LOGIN_FAILED: return "role_login_failed";
    case LOCKOUT_EV_ROLE_LOCKED: return "role_locked";
    case LOCKOUT_EV_ROLE_SOURCE_THROTTLED: return "role_source_throttled";
    default: return "login_failed";
    }
}

const char* lockout_detail_text(uint8 detail)
{
    switch (detail) {
    case LOCKOUT_DETAIL_THRESHOLD: return "threshold reached";
    case LOCKOUT_DETAIL_THRESHOLD_KNOWN: return "threshold reached from a known source";
    case LOCKOUT_DETAIL_WHILE_LOCKED: return "while locked; not counted";
    case LOCKOUT_DETAIL_SOURCE_THROTTLED: return "source throttled; not counted";
    case LOCKOUT_DETAIL_ROLE_REFUSED: return "right password refused while locked";
    case LOCKOUT_DETAIL_ROLE_SOURCE_REFUSED: return "source throttled; refused";
    default: return nullptr;
    }
}

void lockout_make_key(LockoutKey* key, Oid relid, LockoutKind kind, const char* name, int len)
{
    memset(key, 0, sizeof *key);
    key->db = MyDatabaseId;
    key->relid = relid;
    key->kind = kind;
    key->len = (uint16) Min(len, LOCKOUT_NAME_MAX);
    memcpy(key->name, name, key->len);
}

void lockout_make_role_key(LockoutKey* key, LockoutKind kind, const char* name, int len)
{
    lockout_make_key(key, InvalidOid, kind, name, len);
    key->db = InvalidOid;
}

void lockout_roles_set_loaded(bool persisted, const char* bootstrap_superuser,
                              const LockoutRolePolicy* policy)
{
    SpinLockAcquire(&shared->writers_mutex);
    shared->roles_persisted = persisted;
    namestrcpy(&shared->bootstrap_superuser, bootstrap_superuser);
    shared->role_policy = *policy;
    shared->roles_loaded = true;
    SpinLockRelease(&shared->writers_mutex);
}

void lockout_roles_set_policy(const LockoutRolePolicy* policy)
{
    SpinLockAcquire(&shared->writers_mutex);
    shared->role_policy = *policy;
    SpinLockRelease(&shared->writers_mutex);
}

bool lockout_roles_loaded(LockoutRolePolicy* policy, NameData* bootstrap_superuser)
{
    SpinLockAcquire(&shared->writers_mutex);
    bool loaded = shared->roles_loaded;
    if (loaded) {
        *policy = shared->role_policy;
        *bootstrap_superuser = shared->bootstrap_superuser;
    }
    SpinLockRelease(&shared->writers_mutex);
    return loaded;
}

void lockout_roles_set_latch(Latch* latch)
{
    SpinLockAcquire(&shared->writers_mutex);
    shared->role_latch = latch;
    SpinLockRelease(&shared->writers_mutex);
}

int lockout_role_entries(LockoutKey* keys, LockoutState* states, int max)
{
    int n = 0;
    for (int i = 0; i < PARTITIONS; i++)
        LWLockAcquire(&locks[i].lock, LW_SHARED);
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, counters);
    while (auto* e = static_cast<LockoutEntry*>(hash_seq_search(&scan))) {
        if (e->key.kind != LOCKOUT_ROLE || n >= max)
            continue;
        keys[n] = e->key;
        states[n] = e->state;
        n++;
    }
    for (int i = PARTITIONS - 1; i >= 0; i--)
        LWLockRelease(&locks[i].lock);
    return n;
}

LockoutEntry* lockout_acquire(const LockoutKey* key, LockoutLoader load, void* arg)
{
    uint32 hashcode = get_hash_value(counters, key);
    LWLock* lock = partition_lock(hashcode);
    bool evicted_for_room = false;
    for (;;) {
        TimestampTz now = GetCurrentTimestamp();
        uint64 generation = pg_atomic_read_u64(&shared->generation);
        LWLockAcquire(lock, LW_EXCLUSIVE);
        auto* e = static_cast<LockoutEntry*>(
            hash_search_with_hash_value(counters, key, hashcode, HASH_FIND, nullptr));
        if (e != nullptr) {
            if (e->dropped) {
                // Truncated while dirty: what follows starts from nothing.
                memset(&e->state, 0, sizeof e->state);
                e->dropped = false;
            }
            e->touched = now;
            return e;
        }
        LWLockRelease(lock);

        LockoutState state;
        memset(&state, 0, sizeof state);
        if (!load(key, arg, &state))
            memset(&state, 0, sizeof state);

        LWLockAcquire(lock, LW_EXCLUSIVE);
        bool found = false;
        e = nullptr;
        if (hash_get_num_entries(counters) < capacity)
            e = static_cast<LockoutEntry*>(
                hash_search_with_hash_value(counters, key, hashcode, HASH_ENTER_NULL, &found));
        else
            e = static_cast<LockoutEntry*>(
                hash_search_with_hash_value(counters, key, hashcode, HASH_FIND, &found));
        if (e != nullptr && found) {
            if (e->dropped) {
                memset(&e->state, 0, sizeof e->state);
                e->dropped = false;
            }
            e->touched = now;
            return e;
        }
        if (e != nullptr && pg_atomic_read_u64(&shared->generation) == generation) {
            e->hashcode = hashcode;
            e->state = state;
            e->version = 0;
            e->dirty = false;
            e->dropped = false;
            e->dirty_stamp = 0;
            e->touched = now;
            return e;
        }
        if (e != nullptr) {
            hash_search_with_hash_value(counters, key, hashcode, HASH_REMOVE, nullptr);
            LWLockRelease(lock);
            continue;
        }
        LWLockRelease(lock);
        if (evicted_for_room)
            ereport(ERROR,
                    (errcode(ERRCODE_OUT_OF_MEMORY),
                     errmsg("pg_warden: no room for another lockout counter in shared memory"),
                     errdetail("All %d counters hold changes not yet written.", capacity),
                     errhint("Raise warden.lockout_entries, and check that the lockout writer runs.")));
        evict(0);
        evicted_for_room = true;
    }
}

LockoutEntry* lockout_find(const LockoutKey* key)
{
    uint32 hashcode = get_hash_value(counters, key);
    LWLock* lock = partition_lock(hashcode);
    LWLockAcquire(lock, LW_EXCLUSIVE);
    auto* e = static_cast<LockoutEntry*>(
        hash_search_with_hash_value(counters, key, hashcode, HASH_FIND, nullptr));
    if (e == nullptr)
        LWLockRelease(lock);
    return e;
}

void lockout_release(LockoutEntry* entry, bool changed)
{
    Oid db = entry->key.db;
    if (changed)
        mark_dirty(entry);
    LWLockRelease(lock_of(entry));
    if (changed)
        wake_writer(db);
}

void lockout_enqueue_event(const LockoutEvent* event)
{
    TimestampTz started = GetCurrentTimestamp();
    bool sleeping = false;
    for (;;) {
        LWLockAcquire(&locks[RING_LOCK].lock, LW_EXCLUSIVE);
        if (shared->ring_head - shared->ring_tail < (uint64) shared->ring_size) {
            LockoutEvent* slot = &shared->ring[shared->ring_head % shared->ring_size];
            memcpy(slot, event, sizeof *slot);
            slot->slot_state = SLOT_FILLED;
            shared->ring_head++;
            LWLockRelease(&locks[RING_LOCK].lock);
            break;
        }
        LWLockRelease(&locks[RING_LOCK].lock);
        wake_writer(event->db);
        if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), QUEUE_WAIT_MS))
            ereport(ERROR,
                    (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                     errmsg("pg_warden: the queue of security events stayed full for %d ms",
                            QUEUE_WAIT_MS),
                     errhint("Check that the lockout writers run; raise warden.lockout_event_queue.")));
        if (!sleeping) {
            ConditionVariablePrepareToSleep(&shared->progress);
            sleeping = true;
        }
        (void) ConditionVariableTimedSleep(&shared->progress, 100, PG_WAIT_EXTENSION);
    }
    if (sleeping)
        ConditionVariableCancelSleep();
    wake_writer(event->db);
}

void lockout_apply(const LockoutKey* key, LockoutApply what, const LockoutState* state,
                   uint32 columns, uint64 seen_version, TimestampTz now)
{
    if (what == LockoutApply::drop_kind) {
        bool principals = key->kind != LOCKOUT_SOURCE;
        for (int i = 0; i < PARTITIONS; i++)
            LWLockAcquire(&locks[i].lock, LW_EXCLUSIVE);
        HASH_SEQ_STATUS scan;
        hash_seq_init(&scan, counters);
        while (auto* e = static_cast<LockoutEntry*>(hash_seq_search(&scan)))
            if (e->key.db == key->db && e->key.relid == key->relid &&
                (e->key.kind != LOCKOUT_SOURCE) == principals) {
                // The writer may hold a copy of a dirty entry: it removes it itself.
                if (e->dirty) {
                    memset(&e->state, 0, sizeof e->state);
                    e->dropped = true;
                    e->version++;
                } else {
                    remove_entry(e);
                }
            }
        pg_atomic_fetch_add_u64(&shared->generation, 1);
        for (int i = PARTITIONS - 1; i >= 0; i--)
            LWLockRelease(&locks[i].lock);
        return;
    }

    uint32 hashcode = get_hash_value(counters, key);
    LWLock* lock = partition_lock(hashcode);
    bool wake = false;
    LWLockAcquire(lock, LW_EXCLUSIVE);
    auto* e = static_cast<LockoutEntry*>(
        hash_search_with_hash_value(counters, key, hashcode, HASH_FIND, nullptr));
    switch (what) {
    case LockoutApply::set_columns:
        // The table already holds these values: the entry is dirty only if it was.
        if (e != nullptr) {
            LockoutState& s = e->state;
            if (columns & LOCKOUT_COL_FAILURES)
                s.failures = state->failures;
            if (columns & LOCKOUT_COL_LOCKOUTS)
                s.lockouts = state->lockouts;
            if (columns & LOCKOUT_COL_WINDOW) {
                s.has_window = state->has_window;
                s.window_start = state->window_start;
            }
            if (columns & LOCKOUT_COL_LAST_FAILURE) {
                s.has_last_failure = state->has_last_failure;
                s.last_failure_at = state->last_failure_at;
            }
            if (columns & LOCKOUT_COL_UNTIL) {
                s.has_until = state->has_until;
                s.locked_until = state->locked_until;
            }
            e->version++;
        }
        break;
    case LockoutApply::remove_clean:
        if (e != nullptr && !e->dirty)
            remove_entry(e);
        break;
    case LockoutApply::reset_unless_locked:
        // Absent (written and dropped since), truncated, changed since the success saw it,
        // or locked meanwhile: nothing to reset that the success may reset.
        if (e == nullptr || e->dropped || e->version != seen_version ||
            (e->state.has_until && e->state.locked_until > now))
            break;
        reset_counter(e, now);
        wake = true;
        break;
    case LockoutApply::reset:
        if (e == nullptr && hash_get_num_entries(counters) < capacity) {
            bool found;
            e = static_cast<LockoutEntry*>(
                hash_search_with_hash_value(counters, key, hashcode, HASH_ENTER_NULL, &found));
            if (e != nullptr) {
                e->hashcode = hashcode;
                e->version = 0;
                e->dirty = false;
                e->dropped = false;
                e->dirty_stamp = 0;
                memset(&e->state, 0, sizeof e->state);
            }
        }
        if (e != nullptr) {
            e->dropped = false;
            reset_counter(e, now);
            wake = true;
        }
        break;
    case LockoutApply::drop_kind:
        break;
    }
    // A read of the table that began before this change must not be entered after it.
    pg_atomic_fetch_add_u64(&shared->generation, 1);
    LWLockRelease(lock);
    if (wake)
        wake_writer(key->db);
}

bool lockout_wait_flushed(int timeout_ms)
{
    Oid db = MyDatabaseId;
    LWLockAcquire(&locks[RING_LOCK].lock, LW_SHARED);
    uint64 ring_mark = shared->ring_head;
    LWLockRelease(&locks[RING_LOCK].lock);
    LWLockAcquire(&locks[DIRTY_LOCK].lock, LW_SHARED);
    uint64 change_mark = shared->change_counter;
    LWLockRelease(&locks[DIRTY_LOCK].lock);

    TimestampTz started = GetCurrentTimestamp();
    bool sleeping = false;
    bool done;
    for (;;) {
        done = !events_pending(db, ring_mark) && !entries_pending(db, change_mark);
        // Without a writer (no worker slot) waiting would only hold the caller up.
        if (done || TimestampDifferenceExceeds(started, GetCurrentTimestamp(), timeout_ms) ||
            !wake_writer(db))
            break;
        if (!sleeping) {
            ConditionVariablePrepareToSleep(&shared->progress);
            sleeping = true;
        }
        (void) ConditionVariableTimedSleep(&shared->progress, 100, PG_WAIT_EXTENSION);
    }
    if (sleeping)
        ConditionVariableCancelSleep();
    return done;
}

bool lockout_writer_attach(Oid db)
{
    bool attached = false;
    SpinLockAcquire(&shared->writers_mutex);
    for (WriterSlot& s : shared->writers)
        if (s.db == db && s.pid == 0) {
            s.pid = MyProcPid;
            s.latch = MyLatch;
            s.exiting = false;
            s.rewake = false;
            attached = true;
            break;
        }
    SpinLockRelease(&shared->writers_mutex);
    return attached;
}

// Leaves the slot unless something of db is pending or a backend woke the writer while
// it looked: a backend that finds no slot starts a new writer, one that finds the writer
// exiting tells it to stay.
bool lockout_writer_try_exit(Oid db)
{
    WriterSlot* slot = nullptr;
    SpinLockAcquire(&shared->writers_mutex);
    for (WriterSlot& s : shared->writers)
        if (s.db == db && s.pid == MyProcPid) {
            slot = &s;
            s.exiting = true;
            s.rewake = false;
        }
    SpinLockRelease(&shared->writers_mutex);
    if (slot == nullptr)
        return true;
    bool pending = events_pending(db, PG_UINT64_MAX) || entries_pending(db, PG_UINT64_MAX);
    bool leave;
    SpinLockAcquire(&shared->writers_mutex);
    leave = !pending && !slot->rewake;
    if (leave) {
        slot->db = InvalidOid;
        slot->pid = 0;
        slot->latch = nullptr;
    }
    slot->exiting = false;
    SpinLockRelease(&shared->writers_mutex);
    return leave;
}

void lockout_writer_detach(Oid db)
{
    SpinLockAcquire(&shared->writers_mutex);
    for (WriterSlot& s : shared->writers)
        if (s.db == db && s.pid == MyProcPid) {
            s.db = InvalidOid;
            s.pid = 0;
            s.latch = nullptr;
        }
    SpinLockRelease(&shared->writers_mutex);
}

int lockout_capacity(void)
{
    return capacity;
}

int lockout_batch_max(void)
{
    return Min(queue_size, 10000);
}

int lockout_collect_dirty(Oid db, LockoutDirtyCopy* out, int max)
{
    int n = 0;
    LWLockAcquire(&locks[DIRTY_LOCK].lock, LW_SHARED);
    for (dlist_node* node = dlist_is_empty(&shared->dirty) ? nullptr : shared->dirty.head.next;
         node != nullptr && node != &shared->dirty.head; node = node->next) {
        LockoutEntry* e = entry_of(node);
        if (e->key.db == db && n < max)
            out[n++].entry = e;
    }
    LWLockRelease(&locks[DIRTY_LOCK].lock);
    // Dirty entries are removed only by this writer, so the pointers stay valid.
    for (int i = 0; i < n; i++) {
        LockoutEntry* e = out[i].entry;
        LWLockAcquire(lock_of(e), LW_SHARED);
        out[i].key = e->key;
        out[i].state = e->state;
        out[i].version = e->version;
        out[i].dropped = e->dropped;
        LWLockRelease(lock_of(e));
    }
    return n;
}

int lockout_collect_events(Oid db, LockoutEvent* out, uint64* seqs, int max)
{
    int n = 0;
    LWLockAcquire(&locks[RING_LOCK].lock, LW_EXCLUSIVE);
    for (uint64 seq = shared->ring_tail; seq < shared->ring_head && n < max; seq++) {
        LockoutEvent* ev = &shared->ring[seq % shared->ring_size];
        if (ev->slot_state == SLOT_FILLED && ev->db == db) {
            memcpy(&out[n], ev, sizeof *ev);
            seqs[n++] = seq;
            ev->slot_state = SLOT_TAKEN;
        }
    }
    LWLockRelease(&locks[RING_LOCK].lock);
    return n;
}

void lockout_flushed(const LockoutDirtyCopy* copies, int ncopies, const uint64* seqs, int nseqs)
{
    if (nseqs > 0) {
        LWLockAcquire(&locks[RING_LOCK].lock, LW_EXCLUSIVE);
        for (int i = 0; i < nseqs; i++)
            shared->ring[seqs[i] % shared->ring_size].slot_state = SLOT_FREE;
        while (shared->ring_tail < shared->ring_head &&
               shared->ring[shared->ring_tail % shared->ring_size].slot_state == SLOT_FREE)
            shared->ring_tail++;
        LWLockRelease(&locks[RING_LOCK].lock);
    }
    for (int i = 0; i < ncopies; i++) {
        LockoutEntry* e = copies[i].entry;
        LWLockAcquire(lock_of(e), LW_EXCLUSIVE);
        if (e->version == copies[i].version && e->dirty) {
            if (e->dropped) {
                remove_entry(e);
            } else {
                LWLockAcquire(&locks[DIRTY_LOCK].lock, LW_EXCLUSIVE);
                dlist_delete(&e->dirty_node);
                e->dirty = false;
                LWLockRelease(&locks[DIRTY_LOCK].lock);
            }
        }
        LWLockRelease(lock_of(e));
    }
    ConditionVariableBroadcast(&shared->progress);
}

void lockout_unflushed(const uint64* seqs, int nseqs)
{
    LWLockAcquire(&locks[RING_LOCK].lock, LW_EXCLUSIVE);
    for (int i = 0; i < nseqs; i++)
        shared->ring[seqs[i] % shared->ring_size].slot_state = SLOT_FILLED;
    LWLockRelease(&locks[RING_LOCK].lock);
}

void lockout_discard(const LockoutDirtyCopy* copies, int ncopies)
{
    for (int i = 0; i < ncopies; i++) {
        LockoutEntry* e = copies[i].entry;
        LWLockAcquire(lock_of(e), LW_EXCLUSIVE);
        remove_entry(e);
        LWLockRelease(lock_of(e));
    }
    pg_atomic_fetch_add_u64(&shared->generation, 1);
}

void lockout_evict_idle(void)
{
    if (hash_get_num_entries(counters) <= capacity / 2)
        return;
    evict(GetCurrentTimestamp() - (TimestampTz) IDLE_EVICT_SECONDS * USECS_PER_SEC);
}
