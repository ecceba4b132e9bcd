// The lockout writer: a background worker per database, started by the first login
// failure that finds none, that writes what account locking changed in shared memory
// (counters, locks, security events) into its tables, in transactions of its own that
// commit synchronously. It writes as soon as it is woken, so everything a failure
// recorded is on disk one writer transaction later; it leaves after a short idle time so
// that it never keeps DROP DATABASE waiting for long.
//
// It runs as the bootstrap superuser, with search_path pinned to pg_catalog, pg_temp for
// its whole life, and runs only the three fixed statements below, whose values are
// arrays bound as parameters.
#include "lockout_shmem.h"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"
}

extern "C" {
PGDLLEXPORT void warden_lockout_writer_main(Datum main_arg);
}

namespace {

constexpr int IDLE_EXIT_MS = 2000;
constexpr int RETRY_MS = 1000;

const char* const events_sql =
    "INSERT INTO warden.security_events"
    " (occurred_at, event_type, principal, source, failures, locked_until, actor, detail)"
    " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
    "  pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7),"
    "  pg_catalog.unnest($8))";

const char* const attempts_sql =
    "INSERT INTO warden.login_attempts AS a"
    " (principal, known_source, failures, window_start, last_failure_at, lockouts, locked_until)"
    " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
    "  pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7))"
    " ON CONFLICT (principal, known_source) DO UPDATE SET"
    "  failures = EXCLUDED.failures, window_start = EXCLUDED.window_start,"
    "  last_failure_at = EXCLUDED.last_failure_at, lockouts = EXCLUDED.lockouts,"
    "  locked_until = EXCLUDED.locked_until";

const char* const sources_sql =
    "INSERT INTO warden.login_source_failures AS s (source, failures, window_start)"
    " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
    " ON CONFLICT (source) DO UPDATE SET"
    "  failures = EXCLUDED.failures, window_start = EXCLUDED.window_start";

Oid writer_db;

void writer_detach(int, Datum)
{
    lockout_writer_detach(writer_db);
}

// One array parameter being built.
struct Column {
    Oid elem;
    Datum* values;
    bool* nulls;
};

Column column(Oid elem, int n)
{
    return Column{elem, static_cast<Datum*>(palloc0(sizeof(Datum) * Max(n, 1))),
                  static_cast<bool*>(palloc0(sizeof(bool) * Max(n, 1)))};
}

Datum array_of(const Column& c, int n)
{
    int16 len;
    bool byval;
    char align;
    get_typlenbyvalalign(c.elem, &len, &byval, &align);
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(c.values, c.nulls, 1, dims, lbs, c.elem, len, byval, align));
}

Datum text_of(const char* s, int len)
{
    return PointerGetDatum(cstring_to_text_with_len(s, len));
}

Datum inet_of(const char* s)
{
    return DirectFunctionCall1(inet_in, CStringGetDatum(s));
}

void execute(const char* sql, const Oid* types, Column* cols, int ncols, int n)
{
    Datum values[8];
    for (int i = 0; i < ncols; i++)
        values[i] = array_of(cols[i], n);
    SPIPlanPtr plan = SPI_prepare(sql, ncols, const_cast<Oid*>(types));
    if (plan == nullptr)
        elog(ERROR, "pg_warden: preparing a lockout writer statement failed: %s",
             SPI_result_code_string(SPI_result));
    int rc = SPI_execute_plan(plan, values, nullptr, false, 0);
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "pg_warden: a lockout writer statement returned %s", SPI_result_code_string(rc));
}

}  // namespace

void lockout_write_events(const LockoutEvent* events, int n)
{
    static const Oid types[8] = {TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INETARRAYOID,
                                 INT4ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
    Column cols[8] = {column(TIMESTAMPTZOID, n), column(TEXTOID, n), column(TEXTOID, n),
                      column(INETOID, n), column(INT4OID, n), column(TIMESTAMPTZOID, n),
                      column(TEXTOID, n), column(TEXTOID, n)};
    for (int i = 0; i < n; i++) {
        const LockoutEvent& ev = events[i];
        const char* detail = lockout_detail_text(ev.detail);
        cols[0].values[i] = TimestampTzGetDatum(ev.occurred_at);
        cols[1].values[i] = CStringGetTextDatum(lockout_event_type_name(ev.type));
        cols[2].values[i] = text_of(ev.principal, ev.principal_len);
        cols[3].nulls[i] = !ev.has_source;
        if (ev.has_source)
            cols[3].values[i] = inet_of(ev.source);
        cols[4].values[i] = Int32GetDatum(ev.failures);
        cols[5].nulls[i] = !ev.has_until;
        cols[5].values[i] = TimestampTzGetDatum(ev.locked_until);
        cols[6].values[i] = CStringGetTextDatum(NameStr(ev.actor));
        cols[7].nulls[i] = detail == nullptr;
        if (detail != nullptr)
            cols[7].values[i] = CStringGetTextDatum(detail);
    }
    execute(events_sql, types, cols, 8, n);
}

namespace {

void write_attempts(const LockoutDirtyCopy* copies, int n)
{
    static const Oid types[7] = {TEXTARRAYOID, BOOLARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID,
                                 TIMESTAMPTZARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
    Column cols[7] = {column(TEXTOID, n), column(BOOLOID, n), column(INT4OID, n),
                      column(TIMESTAMPTZOID, n), column(TIMESTAMPTZOID, n), column(INT4OID, n),
                      column(TIMESTAMPTZOID, n)};
    int rows = 0;
    for (int i = 0; i < n; i++) {
        const LockoutDirtyCopy& c = copies[i];
        if (c.key.kind == LOCKOUT_SOURCE || c.dropped)
            continue;
        const LockoutState& s = c.state;
        cols[0].values[rows] = text_of(c.key.name, c.key.len);
        cols[1].values[rows] = BoolGetDatum(c.key.kind == LOCKOUT_KNOWN_SOURCE);
        cols[2].values[rows] = Int32GetDatum(s.failures);
        cols[3].values[rows] = TimestampTzGetDatum(s.window_start);
        cols[3].nulls[rows] = !s.has_window;
        cols[4].values[rows] = TimestampTzGetDatum(s.last_failure_at);
        cols[4].nulls[rows] = !s.has_last_failure;
        cols[5].values[rows] = Int32GetDatum(s.lockouts);
        cols[6].values[rows] = TimestampTzGetDatum(s.locked_until);
        cols[6].nulls[rows] = !s.has_until;
        rows++;
    }
    if (rows > 0)
        execute(attempts_sql, types, cols, 7, rows);
}

void write_sources(const LockoutDirtyCopy* copies, int n)
{
    static const Oid types[3] = {INETARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
    Column cols[3] = {column(INETOID, n), column(INT4OID, n), column(TIMESTAMPTZOID, n)};
    int rows = 0;
    for (int i = 0; i < n; i++) {
        const LockoutDirtyCopy& c = copies[i];
        if (c.key.kind != LOCKOUT_SOURCE || c.dropped || !c.state.has_window)
            continue;
        char name[LOCKOUT_NAME_MAX + 1];
        memcpy(name, c.key.name, c.key.len);
        name[c.key.len] = '\0';
        cols[0].values[rows] = inet_of(name);
        cols[1].values[rows] = Int32GetDatum(c.state.failures);
        cols[2].values[rows] = TimestampTzGetDatum(c.state.window_start);
        rows++;
    }
    if (rows > 0)
        execute(sources_sql, types, cols, 3, rows);
}

// Does relid still exist, or exist already, for some transaction? Entries of an
// installation whose CREATE EXTENSION has not committed yet, or whose DROP EXTENSION
// has not, wait; those of an installation that is gone are dropped.
bool relation_in_flight(Oid relid)
{
    static Oid last_relid = InvalidOid;
    static bool last_answer = false;
    static LocalTransactionId last_xact = InvalidLocalTransactionId;
    if (relid == last_relid && last_xact == MyProc->lxid)
        return last_answer;
    Relation rel = table_open(RelationRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    SysScanDesc scan = systable_beginscan(rel, ClassOidIndexId, true, &dirty, 1, &key);
    bool found = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    last_relid = relid;
    last_answer = found;
    last_xact = MyProc->lxid;
    return found;
}

// Buffers of one flush, allocated once.
struct Buffers {
    int max;
    LockoutEvent* events;
    uint64* seqs;
    uint64* done_seqs;
    uint64* kept_seqs;
    LockoutDirtyCopy* dirty;
    LockoutDirtyCopy* copies;
    LockoutDirtyCopy* stale;
};

Buffers buffers;

void allocate_buffers()
{
    int max = lockout_batch_max();
    buffers.max = max;
    buffers.events = static_cast<LockoutEvent*>(MemoryContextAlloc(TopMemoryContext, sizeof(LockoutEvent) * max));
    buffers.seqs = static_cast<uint64*>(MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * max));
    buffers.done_seqs = static_cast<uint64*>(MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * max));
    buffers.kept_seqs = static_cast<uint64*>(MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * max));
    buffers.dirty = static_cast<LockoutDirtyCopy*>(MemoryContextAlloc(TopMemoryContext, sizeof(LockoutDirtyCopy) * max));
    buffers.copies = static_cast<LockoutDirtyCopy*>(MemoryContextAlloc(TopMemoryContext, sizeof(LockoutDirtyCopy) * max));
    buffers.stale = static_cast<LockoutDirtyCopy*>(MemoryContextAlloc(TopMemoryContext, sizeof(LockoutDirtyCopy) * max));
}

constexpr int FLUSH_FAILED = -2;
constexpr int NOT_INSTALLED = -1;

// Writes what is pending for this database in one transaction. Returns how much was
// written, NOT_INSTALLED when pg_warden is not installed here (what was pending for it is
// dropped) or FLUSH_FAILED (logged; everything stays pending).
int flush(Oid db)
{
    Buffers& b = buffers;
    volatile int nevents = 0;
    int ncopies = 0, nstale = 0, nkept = 0, ndone = 0;
    volatile bool installed = true;
    MemoryContext context = CurrentMemoryContext;

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PG_TRY();
    {
        PushActiveSnapshot(GetTransactionSnapshot());
        Oid ns = get_namespace_oid("warden", true);
        Oid relid = OidIsValid(ns) ? get_relname_relid("login_attempts", ns) : InvalidOid;
        installed = OidIsValid(relid);
        nevents = lockout_collect_events(db, b.events, b.seqs, b.max);
        int ndirty = lockout_collect_dirty(db, b.dirty, b.max);
        for (int i = 0; i < ndirty; i++) {
            if (b.dirty[i].key.relid == relid)
                b.copies[ncopies++] = b.dirty[i];
            else if (!relation_in_flight(b.dirty[i].key.relid))
                b.stale[nstale++] = b.dirty[i];
        }
        // Events of a dropped installation are dropped with it; the rest keep their order.
        int ncurrent = 0;
        for (int i = 0; i < nevents; i++) {
            if (b.events[i].relid == relid) {
                b.events[ncurrent++] = b.events[i];
                b.done_seqs[ndone++] = b.seqs[i];
            } else if (relation_in_flight(b.events[i].relid)) {
                b.kept_seqs[nkept++] = b.seqs[i];
            } else {
                b.done_seqs[ndone++] = b.seqs[i];
            }
        }
        if (ncurrent > 0 || ncopies > 0) {
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "pg_warden: SPI_connect failed");
            if (ncurrent > 0)
                lockout_write_events(b.events, ncurrent);
            write_attempts(b.copies, ncopies);
            write_sources(b.copies, ncopies);
            SPI_finish();
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
        lockout_unflushed(b.seqs, nevents);
        return FLUSH_FAILED;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(context);
    lockout_unflushed(b.kept_seqs, nkept);
    lockout_flushed(b.copies, ncopies, b.done_seqs, ndone);
    if (nstale > 0)
        lockout_discard(b.stale, nstale);
    pgstat_report_stat(false);
    if (!installed)
        return NOT_INSTALLED;
    return ndone + ncopies + nstale;
}

}  // namespace

void warden_lockout_writer_main(Datum main_arg)
{
    writer_db = DatumGetObjectId(main_arg);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    if (!lockout_writer_attach(writer_db))
        proc_exit(0);
    before_shmem_exit(writer_detach, (Datum) 0);

    BackgroundWorkerInitializeConnectionByOid(writer_db, InvalidOid, 0);
    lockout_am_writer = true;
    pgstat_report_appname("pg_warden lockout writer");
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    // What it writes is what a crash may lose: never leave a commit unflushed.
    SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
    allocate_buffers();
    MemoryContext loop_context =
        AllocSetContextCreate(TopMemoryContext, "pg_warden lockout writer", ALLOCSET_DEFAULT_SIZES);
    TimestampTz idle_since = GetCurrentTimestamp();

    for (;;) {
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        // Asked to stop (shutdown, DROP DATABASE): one last flush, then leave.
        bool stopping = ShutdownRequestPending;
        MemoryContextSwitchTo(loop_context);
        int written = flush(writer_db);
        MemoryContextSwitchTo(TopMemoryContext);
        MemoryContextReset(loop_context);
        if (stopping)
            proc_exit(0);
        if (written == NOT_INSTALLED && lockout_writer_try_exit(writer_db))
            proc_exit(0);
        if (written == FLUSH_FAILED) {
            (void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, RETRY_MS, PG_WAIT_EXTENSION);
            continue;
        }
        if (written > 0) {
            idle_since = GetCurrentTimestamp();
            continue;
        }
        lockout_evict_idle();
        if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), IDLE_EXIT_MS) &&
            lockout_writer_try_exit(writer_db))
            proc_exit(0);
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, IDLE_EXIT_MS,
                         PG_WAIT_EXTENSION);
    }
}
