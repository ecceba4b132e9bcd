// warden.login_failed / warden.login_succeeded: the decisions of account locking.
//
// With pg_warden preloaded (and installed at 1.2), decisions are made on the counters in
// shared memory (lockout_shmem.h), under the principal's partition lock: N concurrent
// failures count N, exactly the threshold-th one sets the lock, and the caller's
// transaction writes nothing, so its rollback erases nothing. Events are queued for the
// lockout writer; a success's reset is applied at commit (lockout_sync.h). A counter not in
// memory yet is read from warden.login_attempts through its primary key without a plan.
//
// Otherwise (no shared memory, or an installation still at 1.1) the 1.1 rule runs in the
// caller's transaction: exactness comes from the UPSERT (concurrent failures queue on the
// principal's row lock and each increments the latest version), one statement counts a
// failure and records its event, a principal already locked or a source already throttled
// is answered without taking any row lock, and a success writes only when there is
// something to reset.
//
// Either way the policy is cached per backend, statements are prepared once per backend
// (generic plans, SPI_keepplan), principals never share counters, and unknown principals
// go through exactly the same path.
//
// Both run as the extension's owner (SECURITY DEFINER). Their statements are parsed, and
// replanned, only under search_path = pg_catalog, pg_temp: the SQL definitions set it, and
// decide() pins it again in a GUC nest level of its own if it finds anything else, so a
// caller's types, functions or operators can never stand in for the built-in ones.
#include "../core/login_rules.hpp"
#include "bridge.h"
#include "lockout_rule.h"
#include "lockout_shmem.h"
#include "lockout_sync.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/reltrigger.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

// The policy row, cached per backend. A trigger on warden.lockout_policy sends a relcache
// invalidation for the table on every change (and DROP EXTENSION sends one too); the
// callback below then drops the copy, so every backend rereads it on its next call.
struct Policy {
    bool valid;
    Oid relid;
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
};

Policy policy;

// warden.login_attempts, read directly through its primary key: the read happens on every
// call, and a plan for it would be made once per backend from whatever statistics the
// table had then (right after CREATE EXTENSION or TRUNCATE, a sequential scan).
struct Attempts {
    bool valid;
    Oid relid;
    Oid pkey;
    AttrNumber failures;
    AttrNumber locked_until;
    AttrNumber lockouts;
    AttrNumber window_start;
    AttrNumber last_failure_at;
    // The 1.2 trigger that carries transactional changes into shared memory is there: an
    // installation still at 1.1 keeps its transactional counters until it is updated.
    bool synced;
};

Attempts attempts;
bool callback_registered;

void relation_invalidate(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == policy.relid)
        policy.valid = false;
    if (relid == InvalidOid || relid == attempts.relid || relid == attempts.pkey)
        attempts.valid = false;
}

void register_callback()
{
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(relation_invalidate, (Datum) 0);
        callback_registered = true;
    }
}

AttrNumber column_number(Oid relid, const char* name)
{
    AttrNumber n = get_attnum(relid, name);
    if (n == InvalidAttrNumber)
        elog(ERROR, "pg_warden: warden.login_attempts has no column %s", name);
    return n;
}

void load_attempts()
{
    if (attempts.valid)
        return;
    register_callback();
    Oid ns = get_namespace_oid("warden", false);
    Attempts a;
    a.relid = get_relname_relid("login_attempts", ns);
    a.pkey = get_relname_relid("login_attempts_pkey", ns);
    if (!OidIsValid(a.relid) || !OidIsValid(a.pkey))
        elog(ERROR, "pg_warden: warden.login_attempts or its primary key is missing");
    a.failures = column_number(a.relid, "failures");
    a.locked_until = column_number(a.relid, "locked_until");
    a.lockouts = column_number(a.relid, "lockouts");
    a.window_start = column_number(a.relid, "window_start");
    a.last_failure_at = column_number(a.relid, "last_failure_at");
    a.synced = false;
    Relation rel = table_open(a.relid, AccessShareLock);
    for (int i = 0; rel->trigdesc != nullptr && i < rel->trigdesc->numtriggers; i++)
        if (strcmp(rel->trigdesc->triggers[i].tgname, "login_attempts_changed") == 0)
            a.synced = true;
    table_close(rel, AccessShareLock);
    a.valid = true;
    attempts = a;
}

// Decisions on the shared counters: pg_warden preloaded, and installed at 1.2 or later.
bool shared_counters()
{
    if (!lockout_shared_ready())
        return false;
    load_attempts();
    return attempts.synced;
}

const char* const policy_sql = R"SQL(
SELECT threshold, observation_window, lock_duration, backoff, max_lock_duration,
       permanent_after, source_threshold, source_window, 'warden.lockout_policy'::regclass
FROM warden.lockout_policy
)SQL";

// For a login from a source address: has the principal logged in from it before, is the
// source allow-listed, and how many failures has it caused in this window.
// $1 principal, $2 source.
const char* const source_state_sql = R"SQL(
SELECT k.last_success_at,
       NOT coalesce($2 <<= ANY (p.allowed_sources::inet[]), false) AS throttled_kind,
       coalesce(s.failures, 0), s.window_start + p.source_window
FROM warden.lockout_policy p
LEFT JOIN warden.login_known_sources k ON k.principal = $1 AND k.source = $2
LEFT JOIN warden.login_source_failures s
       ON s.source = $2 AND s.window_start > now() - p.source_window
)SQL";

// One failure on the principal's counter, with its event unless it reaches the threshold
// (lock_sql then sets the lock and records both events while the row is still locked).
// $1 principal, $2 known_source, $3 threshold, $4 observation window, $5 source.
// A window that ended, or a lock that ended since it began, starts a new window. The
// WHERE skips principals locked in the meantime: no row comes back then.
#define FRESH "(a.window_start IS NULL OR a.window_start <= now() - $4 " \
              " OR (a.locked_until IS NOT NULL AND a.locked_until >= a.window_start))"
const char* const fail_sql =
    "WITH up AS ("
    " INSERT INTO warden.login_attempts AS a"
    "  (principal, known_source, failures, window_start, last_failure_at)"
    " VALUES ($1, $2, 1, now(), now())"
    " ON CONFLICT (principal, known_source) DO UPDATE SET"
    "  failures = CASE WHEN " FRESH " THEN 1 ELSE a.failures + 1 END,"
    "  window_start = CASE WHEN " FRESH " THEN now() ELSE a.window_start END,"
    "  last_failure_at = now()"
    " WHERE a.locked_until IS NULL OR a.locked_until <= now()"
    " RETURNING a.failures, a.ctid"
    "), ev AS ("
    " INSERT INTO warden.security_events (event_type, principal, source, failures)"
    " SELECT 'login_failed', $1, $5, up.failures FROM up WHERE up.failures < $3"
    ") SELECT failures, ctid FROM up";

// The threshold-th failure: lock with backoff. Lockouts in a row are forgotten once the
// last lock ended more than max_lock_duration ago.
// $1 principal, $2 known_source, $3 lock duration, $4 backoff, $5 max lock duration,
// $6 permanent_after, $7 source, $8 detail of the lockout, $9 the row version this
// transaction just wrote (and holds locked), found by TID without any plan choice.
#define PRIOR_LOCKOUTS "(CASE WHEN a.locked_until <= now() - $5 THEN 0 ELSE a.lockouts END)"
const char* const lock_sql =
    "WITH locked AS ("
    " UPDATE warden.login_attempts a SET"
    "  lockouts = " PRIOR_LOCKOUTS " + 1,"
    "  locked_until = CASE WHEN $6 IS NOT NULL AND " PRIOR_LOCKOUTS " + 1 >= $6"
    "                 THEN 'infinity'::timestamptz"
    "                 ELSE now() + LEAST($5, CASE WHEN $4"
    "                      THEN $3 * power(2.0::float8, LEAST(" PRIOR_LOCKOUTS ", 20))"
    "                      ELSE $3 END) END"
    " WHERE a.ctid = $9 AND a.principal = $1 AND a.known_source = $2"
    " RETURNING a.failures, a.locked_until"
    "), ev AS ("
    " INSERT INTO warden.security_events (event_type, principal, source, failures, locked_until, detail)"
    " SELECT e.type, $1, $7, locked.failures, locked.locked_until, e.detail"
    " FROM locked, (VALUES (1, 'login_failed', NULL), (2, 'locked', $8)) e (n, type, detail)"
    ") SELECT failures, locked_until FROM locked";
#undef PRIOR_LOCKOUTS
#undef FRESH

// One failure from a source address. $1 source, $2 source window.
const char* const source_sql = R"SQL(
INSERT INTO warden.login_source_failures AS s (source, failures, window_start)
VALUES ($1, 1, now())
ON CONFLICT (source) DO UPDATE SET
    failures = CASE WHEN s.window_start <= now() - $2 THEN 1 ELSE s.failures + 1 END,
    window_start = CASE WHEN s.window_start <= now() - $2 THEN now() ELSE s.window_start END
RETURNING s.failures, s.window_start + $2
)SQL";

// A success clears the counter of its kind of source, unless it got locked meanwhile.
const char* const reset_sql = R"SQL(
UPDATE warden.login_attempts a
   SET failures = 0, window_start = NULL, lockouts = 0, locked_until = NULL
 WHERE a.principal = $1 AND a.known_source = $2
   AND (a.locked_until IS NULL OR a.locked_until <= now())
)SQL";

const char* const known_sql = R"SQL(
INSERT INTO warden.login_known_sources (principal, source, last_success_at)
VALUES ($1, $2, now())
ON CONFLICT (principal, source) DO UPDATE SET last_success_at = EXCLUDED.last_success_at
)SQL";

const char* const event_sql = R"SQL(
INSERT INTO warden.security_events (event_type, principal, source, failures, locked_until, detail)
VALUES ($1, $2, $3, $4, $5, $6)
)SQL";

// A known source's last success is refreshed at most this often, so that successful
// logins of one principal from one address do not all write.
constexpr int64 known_refresh_usecs = USECS_PER_HOUR;

enum PlanId {
    PLAN_POLICY, PLAN_SOURCE_STATE, PLAN_FAIL, PLAN_LOCK, PLAN_SOURCE, PLAN_RESET,
    PLAN_KNOWN, PLAN_EVENT, PLAN_SOURCE_ROW, PLAN_COUNT
};

// A source's persisted counter, for loading it into shared memory. $1 source.
const char* const source_row_sql = R"SQL(
SELECT s.failures, s.window_start FROM warden.login_source_failures s WHERE s.source = $1
)SQL";

SPIPlanPtr plans[PLAN_COUNT];

SPIPlanPtr plan(PlanId id)
{
    if (plans[id])
        return plans[id];
    static Oid principal_known_types[] = {TEXTOID, BOOLOID};
    static Oid principal_source_types[] = {TEXTOID, INETOID};
    static Oid fail_types[] = {TEXTOID, BOOLOID, INT4OID, INTERVALOID, INETOID};
    static Oid lock_types[] = {TEXTOID, BOOLOID, INTERVALOID, BOOLOID, INTERVALOID,
                               INT4OID, INETOID, TEXTOID, TIDOID};
    static Oid source_types[] = {INETOID, INTERVALOID};
    static Oid event_types[] = {TEXTOID, TEXTOID, INETOID, INT4OID, TIMESTAMPTZOID, TEXTOID};
    static Oid source_row_types[] = {INETOID};
    const char* sql = nullptr;
    int nargs = 0;
    Oid* types = nullptr;
    switch (id) {
    case PLAN_POLICY: sql = policy_sql; break;
    case PLAN_SOURCE_STATE: sql = source_state_sql; nargs = 2; types = principal_source_types; break;
    case PLAN_FAIL: sql = fail_sql; nargs = 5; types = fail_types; break;
    case PLAN_LOCK: sql = lock_sql; nargs = 9; types = lock_types; break;
    case PLAN_SOURCE: sql = source_sql; nargs = 2; types = source_types; break;
    case PLAN_RESET: sql = reset_sql; nargs = 2; types = principal_known_types; break;
    case PLAN_KNOWN: sql = known_sql; nargs = 2; types = principal_source_types; break;
    case PLAN_EVENT: sql = event_sql; nargs = 6; types = event_types; break;
    case PLAN_SOURCE_ROW: sql = source_row_sql; nargs = 1; types = source_row_types; break;
    case PLAN_COUNT: break;
    }
    // Generic plans always: with a NULL source the planner would fold joins away, find
    // every custom plan cheaper than the generic one, and so plan again on every call.
    SPIPlanPtr p = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
    if (p == nullptr)
        elog(ERROR, "pg_warden: preparing lockout statement %d failed: %s", (int) id,
             SPI_result_code_string(SPI_result));
    SPI_keepplan(p);
    plans[id] = p;
    return p;
}

void run(PlanId id, Datum* values, const char* nulls, int expected)
{
    int rc = SPI_execute_plan(plan(id), values, nulls, false, 0);
    if (rc != expected)
        elog(ERROR, "pg_warden: lockout statement %d returned %s", (int) id,
             SPI_result_code_string(rc));
}

// Column col of the first result row; isnull may be nullptr for NOT NULL columns.
Datum result(int col, bool* isnull)
{
    bool dummy;
    return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col,
                         isnull ? isnull : &dummy);
}

Interval interval_result(int col)
{
    return *DatumGetIntervalP(result(col, nullptr));
}

void load_policy()
{
    if (policy.valid)
        return;
    register_callback();
    run(PLAN_POLICY, nullptr, nullptr, SPI_OK_SELECT);
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("warden.lockout_policy has no row"),
                        errhint("Restore it with INSERT INTO warden.lockout_policy DEFAULT VALUES.")));
    Policy p;
    bool isnull;
    p.threshold = DatumGetInt32(result(1, nullptr));
    p.window = interval_result(2);
    p.lock_duration = interval_result(3);
    p.backoff = DatumGetBool(result(4, nullptr));
    p.max_lock = interval_result(5);
    p.permanent_after = DatumGetInt32(result(6, &isnull));
    p.has_permanent_after = !isnull;
    p.source_threshold = DatumGetInt32(result(7, &isnull));
    p.throttles_sources = !isnull;
    p.source_window = interval_result(8);
    p.relid = DatumGetObjectId(result(9, nullptr));
    p.valid = true;
    policy = p;
}

// The principal's counter for one kind of source, as read without a lock.
struct Counter {
    int32 failures;
    bool has_until;
    TimestampTz locked_until;
    int32 lockouts;
};

// Reads with the latest snapshot, so that a lock committed by another backend since this
// statement began is seen; the UPSERT rechecks under the row lock in any case.
bool read_row(Datum principal, bool known, LockoutState* out)
{
    load_attempts();
    memset(out, 0, sizeof *out);
    Relation rel = table_open(attempts.relid, AccessShareLock);
    ScanKeyData keys[2];
    ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
                           DEFAULT_COLLATION_OID, F_TEXTEQ, principal);
    ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid, InvalidOid,
                           F_BOOLEQ, BoolGetDatum(known));
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    SysScanDesc scan = systable_beginscan(rel, attempts.pkey, true, snapshot, 2, keys);
    HeapTuple tuple = systable_getnext(scan);
    bool found = HeapTupleIsValid(tuple);
    if (found) {
        TupleDesc desc = RelationGetDescr(rel);
        bool isnull;
        out->failures = DatumGetInt32(heap_getattr(tuple, attempts.failures, desc, &isnull));
        out->locked_until = DatumGetTimestampTz(heap_getattr(tuple, attempts.locked_until, desc, &isnull));
        out->has_until = !isnull;
        out->lockouts = DatumGetInt32(heap_getattr(tuple, attempts.lockouts, desc, &isnull));
        out->window_start = DatumGetTimestampTz(heap_getattr(tuple, attempts.window_start, desc, &isnull));
        out->has_window = !isnull;
        out->last_failure_at = DatumGetTimestampTz(heap_getattr(tuple, attempts.last_failure_at, desc, &isnull));
        out->has_last_failure = !isnull;
    }
    systable_endscan(scan);
    UnregisterSnapshot(snapshot);
    table_close(rel, AccessShareLock);
    return found;
}

Counter read_counter(Datum principal, bool known)
{
    LockoutState row;
    read_row(principal, known, &row);
    return Counter{row.failures, row.has_until, row.locked_until, row.lockouts};
}

// What is known about the source of a login (all false/zero for a NULL source).
struct SourceState {
    bool known;
    bool has_last_success;
    TimestampTz last_success;
    bool throttled_kind;  // not allow-listed, and the policy throttles sources
    int32 failures;
    bool has_until;
    TimestampTz until;
};

SourceState read_source(Datum principal, Datum source, bool source_null)
{
    SourceState st{false, false, 0, false, 0, false, 0};
    if (source_null)
        return st;
    Datum values[2] = {principal, source};
    run(PLAN_SOURCE_STATE, values, "  ", SPI_OK_SELECT);
    if (SPI_processed != 1)
        return st;
    bool isnull;
    st.last_success = DatumGetTimestampTz(result(1, &isnull));
    st.has_last_success = !isnull;
    st.known = !isnull;
    st.throttled_kind = policy.throttles_sources && DatumGetBool(result(2, nullptr));
    st.failures = DatumGetInt32(result(3, nullptr));
    st.until = DatumGetTimestampTz(result(4, &isnull));
    st.has_until = !isnull;
    return st;
}

void record_event(const char* type, Datum principal, Datum source, bool source_null,
                  int32 failures, bool has_until, TimestampTz until, const char* detail)
{
    Datum values[6] = {CStringGetTextDatum(type), principal, source, Int32GetDatum(failures),
                       TimestampTzGetDatum(until),
                       detail ? CStringGetTextDatum(detail) : (Datum) 0};
    char nulls[6] = {' ', ' ', source_null ? 'n' : ' ', ' ', has_until ? ' ' : 'n',
                     detail ? ' ' : 'n'};
    run(PLAN_EVENT, values, nulls, SPI_OK_INSERT);
}

struct Decision {
    bool locked;
    bool has_until;
    TimestampTz until;
    int32 failures;
};

Datum decision_tuple(FunctionCallInfo fcinfo, const Decision& d)
{
    // The result row type is fixed: build it once per call site.
    TupleDesc desc = static_cast<TupleDesc>(fcinfo->flinfo->fn_extra);
    if (desc == nullptr) {
        TupleDesc built;
        if (get_call_result_type(fcinfo, nullptr, &built) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "pg_warden: login decision must return a composite type");
        MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
        desc = BlessTupleDesc(CreateTupleDescCopy(built));
        MemoryContextSwitchTo(old);
        fcinfo->flinfo->fn_extra = desc;
    }
    Datum values[4];
    bool nulls[4] = {false, !d.has_until, false, false};
    values[0] = BoolGetDatum(d.locked);
    values[1] = TimestampTzGetDatum(d.until);
    values[2] = Int32GetDatum(d.failures);
    if (!d.locked) {
        values[3] = Int32GetDatum(0);
    } else if (TIMESTAMP_NOT_FINITE(d.until)) {
        nulls[3] = true;  // permanent: no retry will succeed before an unlock
    } else {
        TimestampTz now = GetCurrentTransactionStartTimestamp();
        values[3] = Int32GetDatum(warden::retry_after_seconds(d.until, now));
    }
    return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

Datum checked_principal(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("principal must not be NULL")));
    text* p = PG_GETARG_TEXT_PP(0);
    int len = VARSIZE_ANY_EXHDR(p);
    if (len == 0 || len > 512)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("principal must be 1 to 512 bytes long")));
    return PointerGetDatum(p);
}

bool locked_now(bool has_until, TimestampTz until)
{
    return has_until && until > GetCurrentTransactionStartTimestamp();
}

Decision login_failed(Datum principal, Datum source, bool source_null)
{
    SourceState src = read_source(principal, source, source_null);
    Counter c = read_counter(principal, src.known);

    // A throttled source: refused, and its failures stop counting against accounts.
    if (src.throttled_kind) {
        int32 limit = policy.source_threshold;
        if (src.failures <= limit) {
            Datum values[2] = {source, IntervalPGetDatum(&policy.source_window)};
            run(PLAN_SOURCE, values, "  ", SPI_OK_INSERT_RETURNING);
            src.failures = DatumGetInt32(result(1, nullptr));
            src.until = DatumGetTimestampTz(result(2, nullptr));
            src.has_until = true;
            if (src.failures == limit + 1)
                record_event("source_throttled", principal, source, false, src.failures, true,
                             src.until, nullptr);
        }
        if (src.failures > limit) {
            record_event("login_failed", principal, source, false, c.failures, src.has_until,
                         src.until, "source throttled; not counted");
            return Decision{true, src.has_until, src.until, c.failures};
        }
    }

    if (locked_now(c.has_until, c.locked_until)) {
        record_event("login_failed", principal, source, source_null, c.failures, true,
                     c.locked_until, "while locked; not counted");
        return Decision{true, true, c.locked_until, c.failures};
    }

    Datum values[5] = {principal, BoolGetDatum(src.known), Int32GetDatum(policy.threshold),
                       IntervalPGetDatum(&policy.window), source};
    char nulls[5] = {' ', ' ', ' ', ' ', source_null ? 'n' : ' '};
    run(PLAN_FAIL, values, nulls, SPI_OK_SELECT);

    if (SPI_processed == 0) {
        // Locked by a concurrent failure or an administrator after our read.
        c = read_counter(principal, src.known);
        record_event("login_failed", principal, source, source_null, c.failures, c.has_until,
                     c.locked_until, "while locked; not counted");
        return Decision{c.has_until, c.has_until, c.locked_until, c.failures};
    }
    int32 failures = DatumGetInt32(result(1, nullptr));
    if (failures < policy.threshold)
        return Decision{false, false, 0, failures};

    // This failure holds the row lock until commit, so it alone sets the lock.
    const char* detail = src.known ? "threshold reached from a known source" : "threshold reached";
    Datum row = result(2, nullptr);
    Datum lock_values[9] = {principal,
                            BoolGetDatum(src.known),
                            IntervalPGetDatum(&policy.lock_duration),
                            BoolGetDatum(policy.backoff),
                            IntervalPGetDatum(&policy.max_lock),
                            Int32GetDatum(policy.permanent_after),
                            source,
                            CStringGetTextDatum(detail),
                            row};
    char lock_nulls[9] = {' ', ' ', ' ', ' ', ' ', policy.has_permanent_after ? ' ' : 'n',
                          source_null ? 'n' : ' ', ' ', ' '};
    run(PLAN_LOCK, lock_values, lock_nulls, SPI_OK_SELECT);
    if (SPI_processed != 1)
        elog(ERROR, "pg_warden: the counter of a principal vanished while locked");
    TimestampTz locked_until = DatumGetTimestampTz(result(2, nullptr));
    return Decision{true, true, locked_until, failures};
}

Decision login_succeeded(Datum principal, Datum source, bool source_null)
{
    SourceState src = read_source(principal, source, source_null);
    Counter c = read_counter(principal, src.known);

    if (src.throttled_kind && src.failures > policy.source_threshold)
        return Decision{true, src.has_until, src.until, c.failures};
    if (locked_now(c.has_until, c.locked_until))
        return Decision{true, true, c.locked_until, c.failures};

    if (c.failures > 0 || c.lockouts > 0 || c.has_until) {
        Datum values[2] = {principal, BoolGetDatum(src.known)};
        run(PLAN_RESET, values, "  ", SPI_OK_UPDATE);
        if (SPI_processed == 0) {
            c = read_counter(principal, src.known);
            if (locked_now(c.has_until, c.locked_until))
                return Decision{true, true, c.locked_until, c.failures};
        }
    }
    if (!source_null && (!src.has_last_success ||
                         src.last_success < GetCurrentTransactionStartTimestamp() - known_refresh_usecs)) {
        Datum values[2] = {principal, source};
        run(PLAN_KNOWN, values, "  ", SPI_OK_INSERT);
    }
    return Decision{false, false, 0, 0};
}

// ---- The shared-memory rule (server started with pg_warden preloaded) ----
//
// The counters in shared memory decide; the caller's transaction never writes them, so a
// rollback erases no failure, lock or event. A principal's entry is changed under its
// partition lock: concurrent failures are serialised there, count exactly, and exactly
// the threshold-th one sets the lock. Events go to the writer's queue after the lock is
// released. A success's reset is applied when its transaction commits.

// The session user's name, looked up once per session user.
const char* actor_name()
{
    static Oid cached_id = InvalidOid;
    static NameData cached;
    Oid id = GetSessionUserId();
    if (id != cached_id) {
        namestrcpy(&cached, GetUserNameFromId(id, false));
        cached_id = id;
    }
    return NameStr(cached);
}

struct Events {
    int n;
    LockoutEvent ev[3];
};

void add_event(Events* events, uint8 type, uint8 detail, Datum principal, const char* source,
               int32 failures, bool has_until, TimestampTz until)
{
    LockoutEvent* e = &events->ev[events->n++];
    memset(e, 0, offsetof(LockoutEvent, principal));
    e->db = MyDatabaseId;
    e->relid = attempts.relid;
    e->type = type;
    e->detail = detail;
    e->has_source = source != nullptr;
    if (source != nullptr)
        strlcpy(e->source, source, sizeof e->source);
    e->failures = failures;
    e->has_until = has_until;
    e->locked_until = until;
    e->occurred_at = GetCurrentTimestamp();
    namestrcpy(&e->actor, actor_name());
    text* p = DatumGetTextPP(principal);
    e->principal_len = (uint16) VARSIZE_ANY_EXHDR(p);
    memcpy(e->principal, VARDATA_ANY(p), e->principal_len);
}

void enqueue(const Events& events)
{
    for (int i = 0; i < events.n; i++)
        lockout_enqueue_event(&events.ev[i]);
}

struct PrincipalArg {
    Datum principal;
    bool known;
};

bool load_principal(const LockoutKey*, void* arg, LockoutState* out)
{
    auto* a = static_cast<PrincipalArg*>(arg);
    return read_row(a->principal, a->known, out);
}

bool load_source(const LockoutKey*, void* arg, LockoutState* out)
{
    Datum values[1] = {*static_cast<Datum*>(arg)};
    run(PLAN_SOURCE_ROW, values, " ", SPI_OK_SELECT);
    memset(out, 0, sizeof *out);
    if (SPI_processed != 1)
        return false;
    out->failures = DatumGetInt32(result(1, nullptr));
    out->window_start = DatumGetTimestampTz(result(2, nullptr));
    out->has_window = true;
    return true;
}

void principal_key(LockoutKey* key, Datum principal, bool known)
{
    text* p = DatumGetTextPP(principal);
    lockout_make_key(key, attempts.relid, known ? LOCKOUT_KNOWN_SOURCE : LOCKOUT_OTHER_SOURCES,
                     VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p));
}

// The principal's counter as it stands (loaded into memory if needed).
LockoutState principal_state(Datum principal, bool known)
{
    LockoutKey key;
    principal_key(&key, principal, known);
    PrincipalArg arg{principal, known};
    LockoutEntry* e = lockout_acquire(&key, load_principal, &arg);
    LockoutState state = e->state;
    lockout_release(e, false);
    return state;
}

// A failure from a source the policy throttles. Returns true when the source is over
// its limit (the login is refused and not counted against the principal); until is the
// end of the source's window.
bool count_source_failure(Datum principal, Datum source, const char* source_text,
                          TimestampTz now, bool count, Events* events, TimestampTz* until)
{
    LockoutKey key;
    lockout_make_key(&key, attempts.relid, LOCKOUT_SOURCE, source_text, (int) strlen(source_text));
    TimestampTz cutoff = lockout_minus(now, &policy.source_window);
    LockoutEntry* e = lockout_acquire(&key, load_source, &source);
    LockoutState& s = e->state;
    bool expired = !s.has_window || s.window_start <= cutoff;
    int32 current = expired ? 0 : s.failures;
    int32 limit = policy.source_threshold;
    bool changed = false;
    if (count && current <= limit) {
        if (expired) {
            s.failures = 1;
            s.window_start = now;
            s.has_window = true;
        } else {
            s.failures++;
        }
        current = s.failures;
        changed = true;
    }
    *until = s.has_window ? lockout_plus(s.window_start, &policy.source_window) : 0;
    lockout_release(e, changed);
    if (changed && current == limit + 1)
        add_event(events, LOCKOUT_EV_SOURCE_THROTTLED, LOCKOUT_DETAIL_NONE, principal, source_text,
                  current, true, *until);
    return current > limit;
}

const char* source_text_of(Datum source, bool source_null)
{
    return source_null ? nullptr : DatumGetCString(DirectFunctionCall1(inet_out, source));
}

Decision shared_login_failed(Datum principal, Datum source, bool source_null)
{
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("cannot record a failed login during recovery")));
    load_attempts();
    SourceState src = read_source(principal, source, source_null);
    const char* source_text = source_text_of(source, source_null);
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    Events events;
    events.n = 0;

    if (src.throttled_kind) {
        TimestampTz until;
        if (count_source_failure(principal, source, source_text, now, true, &events, &until)) {
            LockoutState c = principal_state(principal, src.known);
            add_event(&events, LOCKOUT_EV_LOGIN_FAILED, LOCKOUT_DETAIL_SOURCE_THROTTLED, principal,
                      source_text, c.failures, true, until);
            enqueue(events);
            return Decision{true, true, until, c.failures};
        }
    }

    LockoutKey key;
    principal_key(&key, principal, src.known);
    PrincipalArg arg{principal, src.known};
    LockoutEntry* e = lockout_acquire(&key, load_principal, &arg);
    LockoutState& s = e->state;
    if (s.has_until && s.locked_until > now) {
        Decision d{true, true, s.locked_until, s.failures};
        lockout_release(e, false);
        add_event(&events, LOCKOUT_EV_LOGIN_FAILED, LOCKOUT_DETAIL_WHILE_LOCKED, principal,
                  source_text, d.failures, true, d.until);
        enqueue(events);
        return d;
    }
    LockoutRule rule{policy.threshold, policy.window, policy.lock_duration, policy.backoff,
                     policy.max_lock, policy.has_permanent_after, policy.permanent_after};
    bool locked = lockout_count_failure(&s, rule, now);
    Decision d{locked, locked, locked ? s.locked_until : 0, s.failures};
    lockout_release(e, true);
    add_event(&events, LOCKOUT_EV_LOGIN_FAILED, LOCKOUT_DETAIL_NONE, principal, source_text,
              d.failures, d.locked, d.until);
    if (d.locked)
        add_event(&events, LOCKOUT_EV_LOCKED,
                  src.known ? LOCKOUT_DETAIL_THRESHOLD_KNOWN : LOCKOUT_DETAIL_THRESHOLD, principal,
                  source_text, d.failures, true, d.until);
    enqueue(events);
    return d;
}

Decision shared_login_succeeded(Datum principal, Datum source, bool source_null)
{
    load_attempts();
    SourceState src = read_source(principal, source, source_null);
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    if (src.throttled_kind) {
        Events none;
        none.n = 0;
        TimestampTz until;
        if (count_source_failure(principal, source, source_text_of(source, source_null), now,
                                 false, &none, &until)) {
            LockoutState c = principal_state(principal, src.known);
            return Decision{true, true, until, c.failures};
        }
    }
    LockoutKey key;
    principal_key(&key, principal, src.known);
    PrincipalArg arg{principal, src.known};
    LockoutEntry* e = lockout_acquire(&key, load_principal, &arg);
    LockoutState c = e->state;
    uint64 seen_version = e->version;
    lockout_release(e, false);
    if (c.has_until && c.locked_until > now)
        return Decision{true, true, c.locked_until, c.failures};
    if (c.failures > 0 || c.lockouts > 0 || c.has_until)
        lockout_defer(&key, LockoutApply::reset_unless_locked, nullptr, 0, seen_version);
    if (!source_null && (!src.has_last_success ||
                         src.last_success < GetCurrentTransactionStartTimestamp() - known_refresh_usecs)) {
        Datum values[2] = {principal, source};
        run(PLAN_KNOWN, values, "  ", SPI_OK_INSERT);
    }
    return Decision{false, false, 0, 0};
}

using Rule = Decision (*)(Datum principal, Datum source, bool source_null);

const char* const pinned_search_path = "pg_catalog, pg_temp";

// Returns the GUC nest level to close, or -1 when the path was already the pinned one
// (the usual case: the function's SET clause did it, and setting it again costs a search
// path recomputation per login). An error unwinds the nest level with the transaction.
int pin_search_path()
{
    if (namespace_search_path != nullptr && strcmp(namespace_search_path, pinned_search_path) == 0)
        return -1;
    int nest_level = NewGUCNestLevel();
    set_config_option("search_path", pinned_search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                      true, 0, false);
    return nest_level;
}

Datum decide(FunctionCallInfo fcinfo, Rule rule)
{
    Datum principal = checked_principal(fcinfo);
    bool source_null = PG_ARGISNULL(1);
    Datum source = source_null ? (Datum) 0 : PG_GETARG_DATUM(1);
    int nest_level = pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "pg_warden: SPI_connect failed");
    load_policy();
    Decision d = rule(principal, source, source_null);
    SPI_finish();
    if (nest_level >= 0)
        AtEOXact_GUC(true, nest_level);
    return decision_tuple(fcinfo, d);
}

}  // namespace

WARDEN_FUNCTION(warden_login_failed)
{
    return decide(fcinfo, shared_counters() ? shared_login_failed : login_failed);
}

WARDEN_FUNCTION(warden_login_succeeded)
{
    return decide(fcinfo, shared_counters() ? shared_login_succeeded : login_succeeded);
}
