// Pure rules of account locking shared by the extension (no server headers).
#pragma once

#include <cstdint>

namespace warden {

// Whole seconds a client must wait until a lock ending at until_us (microseconds, any
// epoch shared with now_us) has ended: rounded up, 0 once it has ended, and capped at the
// largest int32 so that the answer fits retry_after_seconds.
std::int32_t retry_after_seconds(std::int64_t until_us, std::int64_t now_us);

}  // namespace warden
