#include "backoff.hpp"

namespace warden {

long backoff_delay_ms(int failures, long base_ms, long max_ms) noexcept
{
    if (failures <= 0 || base_ms <= 0)
        return 0;
    long delay = base_ms;
    for (int i = 1; i < failures && delay < max_ms; i++)
        delay = delay > max_ms / 2 ? max_ms : delay * 2;
    return delay < max_ms ? delay : max_ms;
}

}  // namespace warden
