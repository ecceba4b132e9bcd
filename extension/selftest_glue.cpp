#include "cxx_side.hpp"

#include "selftest_glue.hpp"

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace warden::selftest {

namespace {
std::int64_t g_created = 0;
std::int64_t g_destroyed = 0;

template <typename Throw>
[[noreturn]] void descend(int depth, Throw&& raise)
{
    Counted guard;
    std::vector<std::string> owned(4, std::string(64, 'x'));  // heap memory that must be freed
    if (depth <= 1)
        raise();
    descend(depth - 1, raise);
}
}  // namespace

Counted::Counted() { ++g_created; }
Counted::~Counted() { ++g_destroyed; }

std::int64_t destroyed() { return g_destroyed; }
std::int64_t alive() { return g_created - g_destroyed; }

void throw_from_depth(int depth)
{
    descend(depth, [depth] {
        throw Error(sqlstate::invalid_parameter_value,
                    "pg_warden selftest: thrown at depth " + std::to_string(depth),
                    "The exception crossed C++ frames only.",
                    "This error is expected in the bridge test.");
    });
}

void throw_std_from_depth(int depth)
{
    descend(depth, [] { throw std::runtime_error("pg_warden selftest: std::runtime_error"); });
}

void throw_bad_alloc_from_depth(int depth)
{
    descend(depth, [] { throw std::bad_alloc(); });
}

}  // namespace warden::selftest
