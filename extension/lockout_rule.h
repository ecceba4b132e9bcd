// The counting rule shared by account locking (warden.login_failed) and role lockout
// (the client-authentication hook): one failure on a counter that is not locked.
#pragma once

#include "lockout_shmem.h"

struct LockoutRule {
    int32 threshold;
    Interval window;
    Interval lock_duration;
    bool backoff;
    Interval max_lock;
    bool has_permanent_after;
    int32 permanent_after;
};

// Counts one failure at now on s. A window that ended, or a lock that ended since the
// window began, starts a new window; the threshold-th failure locks, each lockout in a
// row doubling the lock (with backoff) up to max_lock, permanently after
// permanent_after lockouts; lockouts are forgotten once the last lock ended max_lock
// ago. Returns true when this failure locked. May raise an error (interval overflow).
bool lockout_count_failure(LockoutState* s, const LockoutRule& rule, TimestampTz now);

// t - i and t + i, as timestamptz arithmetic in SQL.
TimestampTz lockout_minus(TimestampTz t, const Interval* i);
TimestampTz lockout_plus(TimestampTz t, const Interval* i);
