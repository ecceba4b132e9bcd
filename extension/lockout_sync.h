// Changes that reach the shared counters when their transaction commits: a success's
// reset, and whatever a transaction wrote into the lockout tables itself.
#pragma once

#include "lockout_shmem.h"

// Applies what to key when the current transaction commits (nothing if it aborts, or
// if the subtransaction that asked rolls back).
void lockout_defer(const LockoutKey* key, LockoutApply what, const LockoutState* state,
                   uint32 columns, uint64 seen_version = 0);
