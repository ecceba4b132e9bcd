#include <catch2/catch.hpp>

#include <climits>

#include "backoff.hpp"

using warden::backoff_delay_ms;

TEST_CASE("backoff doubles from the base", "[backoff]")
{
    REQUIRE(backoff_delay_ms(1, 1000, 300000) == 1000);
    REQUIRE(backoff_delay_ms(2, 1000, 300000) == 2000);
    REQUIRE(backoff_delay_ms(3, 1000, 300000) == 4000);
    REQUIRE(backoff_delay_ms(9, 1000, 300000) == 256000);
}

TEST_CASE("backoff is capped and never overflows", "[backoff]")
{
    REQUIRE(backoff_delay_ms(10, 1000, 300000) == 300000);
    REQUIRE(backoff_delay_ms(1000, 1000, 300000) == 300000);
    REQUIRE(backoff_delay_ms(INT_MAX, LONG_MAX / 2 + 1, LONG_MAX) == LONG_MAX);
    REQUIRE(backoff_delay_ms(1, 5000, 3000) == 3000);
}

TEST_CASE("no failure, no delay", "[backoff]")
{
    REQUIRE(backoff_delay_ms(0, 1000, 300000) == 0);
    REQUIRE(backoff_delay_ms(-3, 1000, 300000) == 0);
    REQUIRE(backoff_delay_ms(2, 0, 300000) == 0);
}
