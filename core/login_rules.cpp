#include "login_rules.hpp"

#include <limits>

namespace warden {

std::int32_t retry_after_seconds(std::int64_t until_us, std::int64_t now_us)
{
    constexpr std::uint64_t usecs_per_sec = 1000000;
    constexpr auto cap = static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
    if (until_us <= now_us)
        return 0;
    // Unsigned: the difference of two int64 values always fits, even when it would not
    // fit an int64.
    std::uint64_t diff = static_cast<std::uint64_t>(until_us) - static_cast<std::uint64_t>(now_us);
    std::uint64_t secs = diff / usecs_per_sec + (diff % usecs_per_sec != 0 ? 1 : 0);
    return static_cast<std::int32_t>(secs > cap ? cap : secs);
}

}  // namespace warden
