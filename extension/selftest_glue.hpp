// C++-side half of the error-bridge self test (see selftest.cpp).
#pragma once

#include <cstdint>

namespace warden::selftest {

// Builds a chain of `depth` frames, each owning an object whose destructor counts
// itself, and throws a warden::Error (sqlstate 22023) from the innermost frame.
[[noreturn]] void throw_from_depth(int depth);

// Same, but throws std::runtime_error / std::bad_alloc.
[[noreturn]] void throw_std_from_depth(int depth);
[[noreturn]] void throw_bad_alloc_from_depth(int depth);

// An object whose destructor counts how many such objects were destroyed; used by
// the PostgreSQL-side test to prove unwinding ran before the error was raised.
struct Counted {
    Counted();
    ~Counted();
    Counted(const Counted&) = delete;
    Counted& operator=(const Counted&) = delete;
};

std::int64_t destroyed();
std::int64_t alive();

}  // namespace warden::selftest
