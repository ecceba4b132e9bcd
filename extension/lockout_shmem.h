// Shared memory of account locking: the per-principal and per-source counters that
// decide every login (the source of truth while the server runs), the queue of security
// events not yet written, and the slots of the writers that persist both.
//
// A failure changes an entry under its partition lock and queues its events; neither is
// part of the caller's transaction, so a rollback erases nothing. One writer per database
// (lockout_writer.cpp) copies dirty entries and queued events into warden.login_attempts,
// warden.login_source_failures and warden.security_events in transactions of its own.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "datatype/timestamp.h"
#include "lib/ilist.h"
#include "storage/latch.h"
}

constexpr int LOCKOUT_NAME_MAX = 512;
constexpr int LOCKOUT_SOURCE_MAX = 64;  // an inet in text form, with its mask

enum LockoutKind : uint8 {
    LOCKOUT_OTHER_SOURCES = 0,  // a principal's failures from sources it never logged in from
    LOCKOUT_KNOWN_SOURCE = 1,   // ... from sources it did log in from
    LOCKOUT_SOURCE = 2,         // one source address (name is its text form)
    LOCKOUT_ROLE = 3,           // a database role (role lockout; db and relid are 0)
    LOCKOUT_ROLE_SOURCE = 4,    // a source address of password authentications
};

// Zero-padded, compared and hashed as bytes. relid is warden.login_attempts of the
// installation: after DROP and CREATE EXTENSION nothing of the old one is seen again.
struct LockoutKey {
    Oid db;
    Oid relid;
    uint8 kind;
    uint16 len;
    char name[LOCKOUT_NAME_MAX];
};

struct LockoutState {
    int32 failures;
    int32 lockouts;
    bool has_window;
    bool has_last_failure;
    bool has_until;
    TimestampTz window_start;
    TimestampTz last_failure_at;
    TimestampTz locked_until;
};

struct LockoutEntry {
    LockoutKey key;
    LockoutState state;
    uint32 hashcode;
    uint64 version;          // bumped by every change
    bool dirty;              // on the dirty list: changed since the writer last committed it
    bool dropped;            // its table was truncated while dirty: the writer removes it
    uint64 dirty_stamp;      // the change that put it there (for lockout_wait_flushed)
    dlist_node dirty_node;
    TimestampTz touched;
};

enum LockoutEventType : uint8 {
    LOCKOUT_EV_LOGIN_FAILED = 0,
    LOCKOUT_EV_LOCKED,
    LOCKOUT_EV_SOURCE_THROTTLED,
    LOCKOUT_EV_ROLE_LOGIN_FAILED,
    LOCKOUT_EV_ROLE_LOCKED,
    LOCKOUT_EV_ROLE_SOURCE_THROTTLED,
};

enum LockoutDetail : uint8 {
    LOCKOUT_DETAIL_NONE = 0,
    LOCKOUT_DETAIL_THRESHOLD,
    LOCKOUT_DETAIL_THRESHOLD_KNOWN,
    LOCKOUT_DETAIL_WHILE_LOCKED,
    LOCKOUT_DETAIL_SOURCE_THROTTLED,
    LOCKOUT_DETAIL_ROLE_REFUSED,
    LOCKOUT_DETAIL_ROLE_SOURCE_REFUSED,
};

struct LockoutEvent {
    Oid db;
    Oid relid;
    uint8 type;
    uint8 detail;
    uint8 slot_state;        // used by the queue
    bool has_source;
    bool has_until;
    int32 failures;
    TimestampTz occurred_at;
    TimestampTz locked_until;
    NameData actor;
    char source[LOCKOUT_SOURCE_MAX];
    uint16 principal_len;
    char principal[LOCKOUT_NAME_MAX];
};

const char* lockout_event_type_name(uint8 type);
const char* lockout_detail_text(uint8 detail);

// Set in _PG_init (settings) and by the shmem hooks; false without shared_preload_libraries,
// where login_failed keeps 1.1's transactional counters.
bool lockout_shared_ready(void);
void lockout_shmem_init(void);

void lockout_make_key(LockoutKey* key, Oid relid, LockoutKind kind, const char* name, int len);
// The key of a role or of a source address of password authentications (cluster-wide).
void lockout_make_role_key(LockoutKey* key, LockoutKind kind, const char* name, int len);

// The lockout policy as the role lockout worker read it from its database, for the
// client-authentication hook, which reads no table.
constexpr int LOCKOUT_ALLOWED_MAX = 64;
struct LockoutRolePolicy {
    int32 threshold;
    Interval window;
    Interval lock_duration;
    bool backoff;
    Interval max_lock;
    bool has_permanent_after;
    int32 permanent_after;
    bool throttles_sources;
    int32 source_threshold;
    Interval source_window;
    int nallowed;
    char allowed[LOCKOUT_ALLOWED_MAX][24];  // cidr values, as varlena bytes
};

// Set by the role lockout worker once the persisted locks are in memory (persisted:
// whether it can write them back); read by the hook.
void lockout_roles_set_loaded(bool persisted, const char* bootstrap_superuser,
                              const LockoutRolePolicy* policy);
void lockout_roles_set_policy(const LockoutRolePolicy* policy);
// false until loaded; then the policy and the bootstrap superuser's name.
bool lockout_roles_loaded(LockoutRolePolicy* policy, NameData* bootstrap_superuser);
void lockout_roles_set_latch(Latch* latch);
// Every role entry, for warden.role_lockouts (copies; at most max).
int lockout_role_entries(LockoutKey* keys, LockoutState* states, int max);

// Reads the persisted state of an entry that is not in memory; false: no row.
using LockoutLoader = bool (*)(const LockoutKey* key, void* arg, LockoutState* out);

// The entry for key, loaded if absent, returned with its partition lock held exclusively.
LockoutEntry* lockout_acquire(const LockoutKey* key, LockoutLoader load, void* arg);
// The entry if it is in memory (partition lock held), or nullptr (no lock held).
LockoutEntry* lockout_find(const LockoutKey* key);
// Releases the partition lock; a changed entry is queued for its writer.
void lockout_release(LockoutEntry* entry, bool changed);

// Queues an event for the writer of its database; waits while the queue is full.
void lockout_enqueue_event(const LockoutEvent* event);

// Used at commit by lockout_sync.cpp (never raises an error). reset_unless_locked resets
// only a counter that did not change since the caller saw it at seen_version: a success
// never erases a failure that came after it.
enum class LockoutApply { set_columns, remove_clean, reset_unless_locked, reset, drop_kind };
void lockout_apply(const LockoutKey* key, LockoutApply what, const LockoutState* state,
                   uint32 columns, uint64 seen_version, TimestampTz now);

// Columns of a set_columns apply.
constexpr uint32 LOCKOUT_COL_FAILURES = 1, LOCKOUT_COL_LOCKOUTS = 2, LOCKOUT_COL_WINDOW = 4,
                 LOCKOUT_COL_LAST_FAILURE = 8, LOCKOUT_COL_UNTIL = 16;

// Waits until everything recorded in this database before the call is committed by its
// writer (or timeout_ms passed); false on timeout.
bool lockout_wait_flushed(int timeout_ms);

// For the writer (lockout_writer.cpp).
struct LockoutDirtyCopy {
    LockoutEntry* entry;
    LockoutKey key;
    LockoutState state;
    uint64 version;
    bool dropped;            // not to be written
};
extern bool lockout_am_writer;
bool lockout_writer_attach(Oid db);
bool lockout_writer_try_exit(Oid db);
void lockout_writer_detach(Oid db);
int lockout_collect_dirty(Oid db, LockoutDirtyCopy* out, int max);
int lockout_collect_events(Oid db, LockoutEvent* out, uint64* seqs, int max);
void lockout_flushed(const LockoutDirtyCopy* copies, int ncopies, const uint64* seqs, int nseqs);
void lockout_unflushed(const uint64* seqs, int nseqs);
void lockout_discard(const LockoutDirtyCopy* copies, int ncopies);
void lockout_evict_idle(void);
int lockout_batch_max(void);
int lockout_capacity(void);

// In the writer's transaction, with SPI connected: inserts events into
// warden.security_events (lockout_writer.cpp).
void lockout_write_events(const LockoutEvent* events, int n);
