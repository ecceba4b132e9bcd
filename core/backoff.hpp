// Exponential backoff: the delay before the next attempt after `failures` failures in a
// row, doubling from `base_ms` and capped at `max_ms`. The launcher restarts crashed
// workers with it; warden._job_finish applies the same rule to failed jobs in SQL.
#pragma once

namespace warden {

// failures <= 0 means nothing failed: no delay. Never overflows.
long backoff_delay_ms(int failures, long base_ms, long max_ms) noexcept;

}  // namespace warden
