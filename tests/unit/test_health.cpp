#include <catch2/catch.hpp>

#include <limits>

#include "health.hpp"

using namespace warden::health;

TEST_CASE("health statuses map to the check_postgres exit codes", "[health]")
{
    CHECK(exit_code(parse_status("ok")) == 0);
    CHECK(exit_code(parse_status("warning")) == 1);
    CHECK(exit_code(parse_status("critical")) == 2);
    CHECK(exit_code(parse_status("unknown")) == 3);
}

TEST_CASE("an unrecognised status is unknown, never ok", "[health]")
{
    CHECK(parse_status("") == Status::unknown);
    CHECK(parse_status("OK") == Status::unknown);
    CHECK(parse_status("degraded") == Status::unknown);
    CHECK(std::string(status_name(parse_status("critical"))) == "critical");
}

TEST_CASE("Prometheus label values are escaped", "[health]")
{
    CHECK(prometheus_label_value("plain") == "plain");
    CHECK(prometheus_label_value("a\"b") == "a\\\"b");
    CHECK(prometheus_label_value("back\\slash") == "back\\\\slash");
    CHECK(prometheus_label_value("two\nlines") == "two\\nlines");
    CHECK(prometheus_label_value("") == "");
}

TEST_CASE("numbers are shown for humans", "[health]")
{
    CHECK(human_number(1500000000) == "1,500,000,000");
    CHECK(human_number(96.5) == "96.5");
    CHECK(human_number(99.0) == "99");
    CHECK(human_number(0.004) == "0");
    CHECK(human_number(-1234.567) == "-1,234.57");
    CHECK(human_number(123) == "123");
    CHECK(human_number(std::numeric_limits<double>::infinity()) == "infinity");
}

TEST_CASE("byte counts are shown in powers of 1024", "[health]")
{
    CHECK(human_bytes(0) == "0 bytes");
    CHECK(human_bytes(1023) == "1,023 bytes");
    CHECK(human_bytes(67108864) == "64 MB");
    CHECK(human_bytes(1073741824) == "1 GB");
    CHECK(human_bytes(1.5 * 1024 * 1024 * 1024) == "1.5 GB");
}
