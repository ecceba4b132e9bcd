// The one bridge between C++ exceptions and PostgreSQL errors.
//
// Every SQL-callable function is declared with WARDEN_FUNCTION(name) { body }. The body
// runs inside warden_bridge(), which catches any C++ exception, copies its message into
// fixed buffers while the exception is alive, lets the stack unwind (so every
// destructor between the throw and the bridge has run), and only then calls
// ereport(ERROR) from a frame that owns nothing.
//
// The other direction: C++ code that keeps objects alive while it calls into
// PostgreSQL wraps the call in warden_pg_guard(); an ereport inside it is caught with
// PG_TRY, turned into warden::PgError and thrown, so it unwinds as C++ and reaches the
// bridge, which raises it again with its original SQLSTATE.
#pragma once

#include <string>

#include "../core/error.hpp"
#include "pg_headers.h"

namespace warden {

// A PostgreSQL error carried through C++ frames.
class PgError : public Error {
public:
    using Error::Error;
};

// Copies the current PostgreSQL error out of the error stack, clears it, and throws it
// as PgError. Call only from a PG_CATCH block, after switching back to a safe context.
[[noreturn]] void rethrow_pg_error_as_cxx(MemoryContext safe_context);

}  // namespace warden

// Runs fn (any callable taking no arguments) so that an ereport inside it becomes a
// C++ exception. fn must itself hold no C++ objects with destructors.
template <typename Fn>
void warden_pg_guard(Fn&& fn)
{
    MemoryContext context = CurrentMemoryContext;
    bool failed = false;
    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        failed = true;
    }
    PG_END_TRY();
    if (failed)
        warden::rethrow_pg_error_as_cxx(context);
}

Datum warden_bridge(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo);

#define WARDEN_FUNCTION(name)                                                         \
    static Datum name##_impl(FunctionCallInfo fcinfo);                               \
    extern "C" {                                                                     \
    PG_FUNCTION_INFO_V1(name);                                                       \
    }                                                                                \
    extern "C" Datum name(PG_FUNCTION_ARGS) { return warden_bridge(name##_impl, fcinfo); } \
    static Datum name##_impl(FunctionCallInfo fcinfo)
