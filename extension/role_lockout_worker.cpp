// The role lockout worker: started with the server when warden.role_lockout is on, it
// connects to warden.role_lockout_database, loads the role locks persisted there
// (warden.role_login_attempts), the bootstrap superuser's name and the lockout policy
// into shared memory for the client-authentication hook, then writes what the hook
// changed (role counters and locks, security events) back in transactions of its own
// that commit synchronously, and refreshes the policy.
//
// It runs as the bootstrap superuser with search_path pinned to pg_catalog, pg_temp and
// runs only the fixed statements below. Counters of source addresses stay in memory.
#include "lockout_shmem.h"
#include "role_lockout.h"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

constexpr int NAP_MS = 1000;

const char* const policy_sql =
    "SELECT p.threshold, p.observation_window, p.lock_duration, p.backoff, p.max_lock_duration,"
    " p.permanent_after, p.source_threshold, p.source_window, p.allowed_sources"
    " FROM warden.lockout_policy p";

// Locks first: role names that only an attacker ever tried may fill the table, never the
// shared memory (at most half of it), and a lock in force is never left out.
const char* const rows_sql =
    "SELECT r.role_name, r.failures, r.window_start, r.last_failure_at, r.lockouts, r.locked_until"
    " FROM warden.role_login_attempts r"
    " WHERE r.locked_until > pg_catalog.now() OR r.failures > 0"
    " ORDER BY r.locked_until > pg_catalog.now() DESC, r.last_failure_at DESC NULLS LAST"
    " LIMIT $1";

const char* const bootstrap_sql = "SELECT a.rolname FROM pg_catalog.pg_authid a WHERE a.oid = 10";

const char* const save_sql =
    "INSERT INTO warden.role_login_attempts AS r"
    " (role_name, failures, window_start, last_failure_at, lockouts, locked_until)"
    " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
    "  pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6))"
    " ON CONFLICT (role_name) DO UPDATE SET"
    "  failures = EXCLUDED.failures, window_start = EXCLUDED.window_start,"
    "  last_failure_at = EXCLUDED.last_failure_at, lockouts = EXCLUDED.lockouts,"
    "  locked_until = EXCLUDED.locked_until";

bool loaded = false;
bool warned_not_installed = false;

void clear_latch(int, Datum)
{
    lockout_roles_set_latch(nullptr);
}

Interval minutes(int n)
{
    Interval i;
    i.time = (TimeOffset) n * 60 * USECS_PER_SEC;
    i.day = 0;
    i.month = 0;
    return i;
}

// The defaults of warden.lockout_policy, while pg_warden is not installed there.
LockoutRolePolicy default_policy()
{
    LockoutRolePolicy p;
    memset(&p, 0, sizeof p);
    p.threshold = 5;
    p.window = minutes(15);
    p.lock_duration = minutes(15);
    p.backoff = true;
    p.max_lock = minutes(24 * 60);
    p.throttles_sources = true;
    p.source_threshold = 20;
    p.source_window = minutes(15);
    return p;
}

bool installed()
{
    Oid ns = get_namespace_oid("warden", true);
    return OidIsValid(ns) && OidIsValid(get_relname_relid("role_login_attempts", ns));
}

Datum column(int col, bool* isnull)
{
    return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

LockoutRolePolicy read_policy()
{
    if (SPI_execute(policy_sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
        return default_policy();
    LockoutRolePolicy p;
    memset(&p, 0, sizeof p);
    bool isnull;
    p.threshold = DatumGetInt32(column(1, &isnull));
    p.window = *DatumGetIntervalP(column(2, &isnull));
    p.lock_duration = *DatumGetIntervalP(column(3, &isnull));
    p.backoff = DatumGetBool(column(4, &isnull));
    p.max_lock = *DatumGetIntervalP(column(5, &isnull));
    p.permanent_after = DatumGetInt32(column(6, &isnull));
    p.has_permanent_after = !isnull;
    p.source_threshold = DatumGetInt32(column(7, &isnull));
    p.throttles_sources = !isnull;
    p.source_window = *DatumGetIntervalP(column(8, &isnull));
    Datum allowed = column(9, &isnull);
    if (!isnull) {
        Datum* elems;
        bool* elem_nulls;
        int n;
        deconstruct_array(DatumGetArrayTypeP(allowed), CIDROID, -1, false, TYPALIGN_INT, &elems,
                          &elem_nulls, &n);
        for (int i = 0; i < n && p.nallowed < LOCKOUT_ALLOWED_MAX; i++) {
            if (elem_nulls[i])
                continue;
            struct varlena* v = PG_DETOAST_DATUM(elems[i]);
            if (VARSIZE(v) <= sizeof p.allowed[0])
                memcpy(p.allowed[p.nallowed++], v, VARSIZE(v));
        }
    }
    return p;
}

struct RowArg {
    LockoutState state;
};

bool row_loader(const LockoutKey*, void* arg, LockoutState* out)
{
    *out = static_cast<RowArg*>(arg)->state;
    return true;
}

// Enters every persisted role counter into shared memory (a counter already there, from
// before a restart of this worker alone, is newer and stays).
void load_rows()
{
    Oid types[1] = {INT4OID};
    Datum limit[1] = {Int32GetDatum(lockout_capacity() / 2)};
    if (SPI_execute_with_args(rows_sql, 1, types, limit, nullptr, true, 0) != SPI_OK_SELECT)
        elog(ERROR, "pg_warden: reading warden.role_login_attempts failed");
    SPITupleTable* rows = SPI_tuptable;
    uint64 n = SPI_processed;
    for (uint64 i = 0; i < n; i++) {
        HeapTuple tuple = rows->vals[i];
        TupleDesc desc = rows->tupdesc;
        bool isnull;
        char* name = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
        RowArg arg;
        memset(&arg, 0, sizeof arg);
        LockoutState& s = arg.state;
        s.failures = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
        s.window_start = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 3, &isnull));
        s.has_window = !isnull;
        s.last_failure_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 4, &isnull));
        s.has_last_failure = !isnull;
        s.lockouts = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
        s.locked_until = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 6, &isnull));
        s.has_until = !isnull;
        LockoutKey key;
        lockout_make_role_key(&key, LOCKOUT_ROLE, name, (int) strlen(name));
        lockout_release(lockout_acquire(&key, row_loader, &arg), false);
    }
}

struct Array {
    Oid elem;
    int16 len;
    bool byval;
    char align;
    Datum* values;
    bool* nulls;
};

Array array(Oid elem, int n)
{
    Array a;
    a.elem = elem;
    get_typlenbyvalalign(elem, &a.len, &a.byval, &a.align);
    a.values = static_cast<Datum*>(palloc0(sizeof(Datum) * Max(n, 1)));
    a.nulls = static_cast<bool*>(palloc0(sizeof(bool) * Max(n, 1)));
    return a;
}

Datum datum_of(const Array& a, int n)
{
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(a.values, a.nulls, 1, dims, lbs, a.elem, a.len,
                                              a.byval, a.align));
}

void save_rows(const LockoutDirtyCopy* copies, int n)
{
    Array cols[6] = {array(TEXTOID, n), array(INT4OID, n), array(TIMESTAMPTZOID, n),
                     array(TIMESTAMPTZOID, n), array(INT4OID, n), array(TIMESTAMPTZOID, n)};
    int rows = 0;
    for (int i = 0; i < n; i++) {
        const LockoutDirtyCopy& c = copies[i];
        if (c.key.kind != LOCKOUT_ROLE)
            continue;
        cols[0].values[rows] = PointerGetDatum(cstring_to_text_with_len(c.key.name, c.key.len));
        cols[1].values[rows] = Int32GetDatum(c.state.failures);
        cols[2].values[rows] = TimestampTzGetDatum(c.state.window_start);
        cols[2].nulls[rows] = !c.state.has_window;
        cols[3].values[rows] = TimestampTzGetDatum(c.state.last_failure_at);
        cols[3].nulls[rows] = !c.state.has_last_failure;
        cols[4].values[rows] = Int32GetDatum(c.state.lockouts);
        cols[5].values[rows] = TimestampTzGetDatum(c.state.locked_until);
        cols[5].nulls[rows] = !c.state.has_until;
        rows++;
    }
    if (rows == 0)
        return;
    Oid types[6] = {TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
                    INT4ARRAYOID, TIMESTAMPTZARRAYOID};
    Datum values[6];
    for (int i = 0; i < 6; i++)
        values[i] = datum_of(cols[i], rows);
    int rc = SPI_execute_with_args(save_sql, 6, types, values, nullptr, false, 0);
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "pg_warden: saving role counters returned %s", SPI_result_code_string(rc));
}

struct Buffers {
    int max;
    LockoutEvent* events;
    uint64* seqs;
    LockoutDirtyCopy* copies;
};

Buffers buffers;

// One cycle in one transaction: load (the first time) or write what the hook changed,
// and refresh the policy. Returns how much was written; -1 on error (logged).
int cycle()
{
    Buffers& b = buffers;
    volatile int nevents = 0;
    int ncopies = 0;
    MemoryContext context = CurrentMemoryContext;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PG_TRY();
    {
        PushActiveSnapshot(GetTransactionSnapshot());
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "pg_warden: SPI_connect failed");
        bool here = installed();
        LockoutRolePolicy policy = here ? read_policy() : default_policy();
        if (!loaded) {
            if (here)
                load_rows();
            else
                ereport(WARNING,
                        (errmsg("pg_warden role lockout: pg_warden is not installed in database \"%s\"; "
                                "role locks are in force but not kept across a restart",
                                warden_role_lockout_database),
                         errhint("CREATE EXTENSION pg_warden in warden.role_lockout_database.")));
            const char* bootstrap = "";
            if (SPI_execute(bootstrap_sql, true, 1) == SPI_OK_SELECT && SPI_processed == 1) {
                bool isnull;
                bootstrap = NameStr(*DatumGetName(column(1, &isnull)));
            }
            lockout_roles_set_loaded(here, bootstrap, &policy);
            loaded = true;
        } else {
            lockout_roles_set_policy(&policy);
        }
        nevents = lockout_collect_events(InvalidOid, b.events, b.seqs, b.max);
        ncopies = lockout_collect_dirty(InvalidOid, b.copies, b.max);
        if (here && !RecoveryInProgress()) {
            if (nevents > 0)
                lockout_write_events(b.events, nevents);
            save_rows(b.copies, ncopies);
        } else if ((nevents > 0 || ncopies > 0) && !warned_not_installed) {
            ereport(WARNING, (errmsg("pg_warden role lockout: role events and counters are not "
                                     "written: pg_warden is not installed in database \"%s\" or "
                                     "the server is a standby", warden_role_lockout_database)));
            warned_not_installed = true;
        }
        SPI_finish();
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
        return -1;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(context);
    lockout_flushed(b.copies, ncopies, b.seqs, nevents);
    pgstat_report_stat(false);
    return nevents + ncopies;
}

}  // namespace

void warden_register_role_lockout_worker(void)
{
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    // On a standby too: the locks are loaded (read-only) and enforced there.
    worker.bgw_start_time = BgWorkerStart_ConsistentState;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_warden");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "warden_role_lockout_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_warden role lockout");
    snprintf(worker.bgw_type, BGW_MAXLEN, "pg_warden role lockout");
    RegisterBackgroundWorker(&worker);
}

void warden_role_lockout_main(Datum)
{
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(warden_role_lockout_database, nullptr, 0);
    lockout_am_writer = true;
    pgstat_report_appname("pg_warden role lockout");
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
    int max = lockout_batch_max();
    buffers.max = max;
    buffers.events = static_cast<LockoutEvent*>(MemoryContextAlloc(TopMemoryContext, sizeof(LockoutEvent) * max));
    buffers.seqs = static_cast<uint64*>(MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * max));
    buffers.copies = static_cast<LockoutDirtyCopy*>(MemoryContextAlloc(TopMemoryContext, sizeof(LockoutDirtyCopy) * max));
    lockout_roles_set_latch(MyLatch);
    before_shmem_exit(clear_latch, (Datum) 0);
    MemoryContext loop_context =
        AllocSetContextCreate(TopMemoryContext, "pg_warden role lockout", ALLOCSET_DEFAULT_SIZES);

    for (;;) {
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        bool stopping = ShutdownRequestPending;
        MemoryContextSwitchTo(loop_context);
        int written = cycle();
        MemoryContextSwitchTo(TopMemoryContext);
        MemoryContextReset(loop_context);
        if (stopping)
            proc_exit(0);
        if (written > 0)
            continue;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, NAP_MS,
                         PG_WAIT_EXTENSION);
    }
}
