#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "login_rules.hpp"

using warden::retry_after_seconds;

TEST_CASE("retry-after rounds up to whole seconds", "[login]")
{
    const std::int64_t now = 1'700'000'000'000'000;
    REQUIRE(retry_after_seconds(now + 900'000'000, now) == 900);
    REQUIRE(retry_after_seconds(now + 899'000'001, now) == 900);
    REQUIRE(retry_after_seconds(now + 1, now) == 1);
}

TEST_CASE("a lock that has ended asks for no wait", "[login]")
{
    const std::int64_t now = 1'700'000'000'000'000;
    REQUIRE(retry_after_seconds(now, now) == 0);
    REQUIRE(retry_after_seconds(now - 5'000'000, now) == 0);
}

TEST_CASE("very long locks are capped instead of overflowing", "[login]")
{
    const std::int64_t max64 = std::numeric_limits<std::int64_t>::max();
    REQUIRE(retry_after_seconds(max64, 0) == std::numeric_limits<std::int32_t>::max());
    REQUIRE(retry_after_seconds(max64, -max64) == std::numeric_limits<std::int32_t>::max());
}
