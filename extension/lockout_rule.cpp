// The counting rule of account locking and role lockout (see lockout_rule.h), on the
// counters in shared memory: the caller holds the counter's partition lock.
#include "lockout_rule.h"

extern "C" {
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

TimestampTz lockout_minus(TimestampTz t, const Interval* i)
{
    return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval, TimestampTzGetDatum(t),
                                                   IntervalPGetDatum(i)));
}

TimestampTz lockout_plus(TimestampTz t, const Interval* i)
{
    return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(t),
                                                   IntervalPGetDatum(i)));
}

bool lockout_count_failure(LockoutState* s, const LockoutRule& rule, TimestampTz now)
{
    bool fresh = !s->has_window || s->window_start <= lockout_minus(now, &rule.window) ||
                 (s->has_until && s->locked_until >= s->window_start);
    if (fresh) {
        s->failures = 1;
        s->window_start = now;
        s->has_window = true;
    } else {
        s->failures++;
    }
    s->last_failure_at = now;
    s->has_last_failure = true;
    if (s->failures < rule.threshold)
        return false;
    int32 prior = (s->has_until && s->locked_until <= lockout_minus(now, &rule.max_lock)) ? 0 : s->lockouts;
    s->lockouts = prior + 1;
    if (rule.has_permanent_after && s->lockouts >= rule.permanent_after) {
        TIMESTAMP_NOEND(s->locked_until);
    } else {
        Datum duration = IntervalPGetDatum(&rule.lock_duration);
        if (rule.backoff)
            duration = DirectFunctionCall2(interval_mul, duration,
                                           Float8GetDatum((double) (1 << Min(prior, 20))));
        duration = DirectFunctionCall2(interval_smaller, IntervalPGetDatum(&rule.max_lock), duration);
        s->locked_until = lockout_plus(now, DatumGetIntervalP(duration));
    }
    s->has_until = true;
    return true;
}
