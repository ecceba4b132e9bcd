// warden.login_failed / warden.login_succeeded: the decisions of account locking.
//
// Exactness comes from the UPSERT: concurrent failures for one principal queue on its row
// lock and each one increments the latest version, so N failures count N and exactly the
// threshold-th one sets the lock. Speed comes from doing little: plans are prepared once
// per backend (SPI_keepplan), a principal already locked or a source already throttled is
// answered from a plain read without taking any row lock, and a success writes only when
// there is something to reset. Principals never share rows, so nothing here blocks a
// login of another principal. Unknown principals go through exactly the same path.
#include "bridge.h"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace {

// Reads the policy, the principal's counter for this kind of source, and the source's
// throttle state. $1 principal, $2 source (may be NULL).
const char* const read_sql = R"SQL(
SELECT p.threshold, p.observation_window, p.lock_duration, p.backoff, p.max_lock_duration,
       p.permanent_after, p.source_threshold, p.source_window,
       ($2 IS NOT NULL AND p.source_threshold IS NOT NULL
        AND NOT coalesce($2 <<= ANY (p.allowed_sources::inet[]), false)) AS throttles_source,
       k.principal IS NOT NULL AS known, k.last_success_at,
       coalesce(a.failures, 0), a.locked_until, coalesce(a.lockouts, 0),
       coalesce(s.failures, 0), s.window_start + p.source_window AS source_until
FROM warden.lockout_policy p
LEFT JOIN warden.login_known_sources k ON k.principal = $1 AND k.source = $2
LEFT JOIN warden.login_attempts a ON a.principal = $1 AND a.known_source = (k.principal IS NOT NULL)
LEFT JOIN warden.login_source_failures s ON s.source = $2 AND s.window_start > now() - p.source_window
)SQL";

enum ReadColumn {
    R_THRESHOLD = 1, R_WINDOW, R_LOCK_DURATION, R_BACKOFF, R_MAX_LOCK, R_PERMANENT_AFTER,
    R_SOURCE_THRESHOLD, R_SOURCE_WINDOW, R_THROTTLES_SOURCE, R_KNOWN, R_LAST_SUCCESS,
    R_FAILURES, R_LOCKED_UNTIL, R_LOCKOUTS, R_SOURCE_FAILURES, R_SOURCE_UNTIL
};

// One failure on the principal's counter. $1 principal, $2 known_source, $3 threshold,
// $4 observation window, $5 lock duration, $6 backoff, $7 max lock duration,
// $8 permanent_after. A window that ended, or a lock that ended since it began, starts a
// new window. Lockouts in a row are forgotten once the last lock ended more than
// max_lock_duration ago. The WHERE skips principals locked in the meantime.
#define FRESH "(a.window_start IS NULL OR a.window_start <= now() - $4 " \
              " OR (a.locked_until IS NOT NULL AND a.locked_until >= a.window_start))"
#define COUNT_AFTER "(CASE WHEN " FRESH " THEN 1 ELSE a.failures + 1 END)"
#define PRIOR_LOCKOUTS "(CASE WHEN a.locked_until <= now() - $7 THEN 0 ELSE a.lockouts END)"
#define LOCK_END(k) "(CASE WHEN $8 IS NOT NULL AND " k " >= $8 THEN 'infinity'::timestamptz " \
    "ELSE now() + LEAST($7, CASE WHEN $6 THEN $5 * power(2.0::float8, LEAST(" k " - 1, 20)) " \
    "ELSE $5 END) END)"
const char* const fail_sql =
    "INSERT INTO warden.login_attempts AS a"
    "  (principal, known_source, failures, window_start, last_failure_at, lockouts, locked_until)"
    " VALUES ($1, $2, 1, now(), now(), CASE WHEN 1 >= $3 THEN 1 ELSE 0 END,"
    "         CASE WHEN 1 >= $3 THEN " LOCK_END("1") " END)"
    " ON CONFLICT (principal, known_source) DO UPDATE SET"
    "  failures = " COUNT_AFTER ","
    "  window_start = CASE WHEN " FRESH " THEN now() ELSE a.window_start END,"
    "  last_failure_at = now(),"
    "  lockouts = CASE WHEN " COUNT_AFTER " >= $3 THEN " PRIOR_LOCKOUTS " + 1 ELSE a.lockouts END,"
    "  locked_until = CASE WHEN " COUNT_AFTER " >= $3"
    "                 THEN " LOCK_END("(" PRIOR_LOCKOUTS " + 1)") " ELSE a.locked_until END"
    " WHERE a.locked_until IS NULL OR a.locked_until <= now()"
    " RETURNING a.failures, a.locked_until, a.locked_until > now()";
#undef FRESH
#undef COUNT_AFTER
#undef PRIOR_LOCKOUTS
#undef LOCK_END

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

enum PlanId { PLAN_READ, PLAN_FAIL, PLAN_SOURCE, PLAN_RESET, PLAN_KNOWN, PLAN_EVENT, PLAN_COUNT };

SPIPlanPtr plans[PLAN_COUNT];

SPIPlanPtr plan(PlanId id)
{
    if (plans[id])
        return plans[id];
    static Oid read_types[] = {TEXTOID, INETOID};
    static Oid fail_types[] = {TEXTOID, BOOLOID, INT4OID, INTERVALOID,
                               INTERVALOID, BOOLOID, INTERVALOID, INT4OID};
    static Oid source_types[] = {INETOID, INTERVALOID};
    static Oid principal_known_types[] = {TEXTOID, BOOLOID};
    static Oid known_types[] = {TEXTOID, INETOID};
    static Oid event_types[] = {TEXTOID, TEXTOID, INETOID, INT4OID, TIMESTAMPTZOID, TEXTOID};
    const char* sql = nullptr;
    int nargs = 0;
    Oid* types = nullptr;
    switch (id) {
    case PLAN_READ: sql = read_sql; nargs = 2; types = read_types; break;
    case PLAN_FAIL: sql = fail_sql; nargs = 8; types = fail_types; break;
    case PLAN_SOURCE: sql = source_sql; nargs = 2; types = source_types; break;
    case PLAN_RESET: sql = reset_sql; nargs = 2; types = principal_known_types; break;
    case PLAN_KNOWN: sql = known_sql; nargs = 2; types = known_types; break;
    case PLAN_EVENT: sql = event_sql; nargs = 6; types = event_types; break;
    case PLAN_COUNT: break;
    }
    SPIPlanPtr p = SPI_prepare(sql, nargs, types);
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

// The row of the read statement; valid until SPI_finish.
struct State {
    HeapTuple tuple;
    TupleDesc desc;
};

Datum column(const State& s, int col, bool* isnull)
{
    return SPI_getbinval(s.tuple, s.desc, col, isnull);
}

bool column_bool(const State& s, int col)
{
    bool isnull;
    Datum d = column(s, col, &isnull);
    return !isnull && DatumGetBool(d);
}

int32 column_int(const State& s, int col)
{
    bool isnull;
    Datum d = column(s, col, &isnull);
    return isnull ? 0 : DatumGetInt32(d);
}

// Returns 0 (DT_NOBEGIN never occurs here) for NULL.
TimestampTz column_time(const State& s, int col, bool* isnull)
{
    Datum d = column(s, col, isnull);
    return *isnull ? 0 : DatumGetTimestampTz(d);
}

State read_state(Datum principal, Datum source, bool source_null)
{
    Datum values[2] = {principal, source};
    char nulls[2] = {' ', source_null ? 'n' : ' '};
    run(PLAN_READ, values, nulls, SPI_OK_SELECT);
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("warden.lockout_policy has no row"),
                        errhint("Restore it with INSERT INTO warden.lockout_policy DEFAULT VALUES.")));
    return State{SPI_tuptable->vals[0], SPI_tuptable->tupdesc};
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
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "pg_warden: login decision must return a composite type");
    desc = BlessTupleDesc(desc);
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
        int64 usecs = d.until - GetCurrentTransactionStartTimestamp();
        int64 secs = usecs <= 0 ? 0 : (usecs + USECS_PER_SEC - 1) / USECS_PER_SEC;
        values[3] = Int32GetDatum(secs > PG_INT32_MAX ? PG_INT32_MAX : (int32) secs);
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
    State s = read_state(principal, source, source_null);
    bool lu_null;
    TimestampTz locked_until = column_time(s, R_LOCKED_UNTIL, &lu_null);
    int32 failures = column_int(s, R_FAILURES);

    // A throttled source: refused, and its failures stop counting against accounts.
    if (column_bool(s, R_THROTTLES_SOURCE)) {
        int32 limit = column_int(s, R_SOURCE_THRESHOLD);
        bool su_null;
        TimestampTz source_until = column_time(s, R_SOURCE_UNTIL, &su_null);
        int32 source_failures = column_int(s, R_SOURCE_FAILURES);
        if (source_failures <= limit) {
            bool isnull;
            Datum values[2] = {source, column(s, R_SOURCE_WINDOW, &isnull)};
            run(PLAN_SOURCE, values, "  ", SPI_OK_INSERT_RETURNING);
            source_failures = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
                                                          SPI_tuptable->tupdesc, 1, &isnull));
            source_until = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
                                                             SPI_tuptable->tupdesc, 2, &isnull));
            if (source_failures == limit + 1)
                record_event("source_throttled", principal, source, false, source_failures, true,
                             source_until, nullptr);
        }
        if (source_failures > limit) {
            record_event("login_failed", principal, source, false, failures, true, source_until,
                         "source throttled; not counted");
            return Decision{true, true, source_until, failures};
        }
    }

    if (locked_now(!lu_null, locked_until)) {
        record_event("login_failed", principal, source, source_null, failures, true,
                     locked_until, "while locked; not counted");
        return Decision{true, true, locked_until, failures};
    }

    bool known = column_bool(s, R_KNOWN);
    Datum values[8];
    char nulls[8];
    values[0] = principal;
    values[1] = BoolGetDatum(known);
    for (int i = 2; i < 8; i++) {
        static const int from[] = {R_THRESHOLD, R_WINDOW, R_LOCK_DURATION, R_BACKOFF, R_MAX_LOCK,
                                   R_PERMANENT_AFTER};
        bool isnull;
        values[i] = column(s, from[i - 2], &isnull);
        nulls[i] = isnull ? 'n' : ' ';
    }
    nulls[0] = nulls[1] = ' ';
    run(PLAN_FAIL, values, nulls, SPI_OK_INSERT_RETURNING);

    if (SPI_processed == 0) {
        // Locked by a concurrent failure or an administrator after our read.
        State now_state = read_state(principal, source, source_null);
        locked_until = column_time(now_state, R_LOCKED_UNTIL, &lu_null);
        failures = column_int(now_state, R_FAILURES);
        record_event("login_failed", principal, source, source_null, failures, !lu_null,
                     locked_until, "while locked; not counted");
        return Decision{!lu_null, !lu_null, locked_until, failures};
    }

    bool isnull;
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    failures = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
    locked_until = DatumGetTimestampTz(SPI_getbinval(row, desc, 2, &lu_null));
    bool locked = DatumGetBool(SPI_getbinval(row, desc, 3, &isnull)) && !isnull;
    record_event("login_failed", principal, source, source_null, failures, locked, locked_until,
                 nullptr);
    if (locked)
        record_event("locked", principal, source, source_null, failures, true, locked_until,
                     known ? "threshold reached from a known source" : "threshold reached");
    return Decision{locked, locked, locked_until, failures};
}

Decision login_succeeded(Datum principal, Datum source, bool source_null)
{
    State s = read_state(principal, source, source_null);
    bool lu_null;
    TimestampTz locked_until = column_time(s, R_LOCKED_UNTIL, &lu_null);

    if (column_bool(s, R_THROTTLES_SOURCE) &&
        column_int(s, R_SOURCE_FAILURES) > column_int(s, R_SOURCE_THRESHOLD)) {
        bool su_null;
        TimestampTz source_until = column_time(s, R_SOURCE_UNTIL, &su_null);
        return Decision{true, true, source_until, column_int(s, R_FAILURES)};
    }
    if (locked_now(!lu_null, locked_until))
        return Decision{true, true, locked_until, column_int(s, R_FAILURES)};

    bool known = column_bool(s, R_KNOWN);
    if (column_int(s, R_FAILURES) > 0 || column_int(s, R_LOCKOUTS) > 0 || !lu_null) {
        Datum values[2] = {principal, BoolGetDatum(known)};
        run(PLAN_RESET, values, "  ", SPI_OK_UPDATE);
        if (SPI_processed == 0) {
            State now_state = read_state(principal, source, source_null);
            locked_until = column_time(now_state, R_LOCKED_UNTIL, &lu_null);
            if (locked_now(!lu_null, locked_until))
                return Decision{true, true, locked_until, column_int(now_state, R_FAILURES)};
        }
    }
    if (!source_null) {
        bool ls_null;
        TimestampTz last = column_time(s, R_LAST_SUCCESS, &ls_null);
        if (ls_null || last < GetCurrentTransactionStartTimestamp() - known_refresh_usecs) {
            Datum values[2] = {principal, source};
            run(PLAN_KNOWN, values, "  ", SPI_OK_INSERT);
        }
    }
    return Decision{false, false, 0, 0};
}

using Rule = Decision (*)(Datum principal, Datum source, bool source_null);

Datum decide(FunctionCallInfo fcinfo, Rule rule)
{
    Datum principal = checked_principal(fcinfo);
    bool source_null = PG_ARGISNULL(1);
    Datum source = source_null ? (Datum) 0 : PG_GETARG_DATUM(1);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "pg_warden: SPI_connect failed");
    Decision d = rule(principal, source, source_null);
    SPI_finish();
    return decision_tuple(fcinfo, d);
}

}  // namespace

WARDEN_FUNCTION(warden_login_failed)
{
    return decide(fcinfo, login_failed);
}

WARDEN_FUNCTION(warden_login_succeeded)
{
    return decide(fcinfo, login_succeeded);
}
