// warden._bridge_selftest(mode text): raises errors in both directions across the
// C++/PostgreSQL boundary so that the regression suite can show the backend survives,
// destructors ran, and SQLSTATEs arrive intact. Granted to no one but superusers.
#include <cstdint>
#include <cstring>

#include "selftest_glue.hpp"
#include "bridge.h"

extern "C" {
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
}

namespace {

// C++ frames owning objects, with an ereport (division by zero, SQLSTATE 22012)
// raised by a PostgreSQL function called under them through the guard.
void pg_error_under_cxx(int depth)
{
    warden::selftest::Counted guard;
    if (depth > 1) {
        pg_error_under_cxx(depth - 1);
        return;
    }
    warden_pg_guard([] { DirectFunctionCall2(int4div, Int32GetDatum(1), Int32GetDatum(0)); });
}

}  // namespace

WARDEN_FUNCTION(warden_bridge_selftest)
{
    const char* mode = text_to_cstring(PG_GETARG_TEXT_PP(0));
    int64_t depth = 10;

    if (strcmp(mode, "ok") == 0)
        PG_RETURN_TEXT_P(cstring_to_text("ok"));
    if (strcmp(mode, "cxx") == 0)
        warden::selftest::throw_from_depth(depth);
    if (strcmp(mode, "std") == 0)
        warden::selftest::throw_std_from_depth(depth);
    if (strcmp(mode, "bad_alloc") == 0)
        warden::selftest::throw_bad_alloc_from_depth(depth);
    if (strcmp(mode, "pg") == 0) {
        pg_error_under_cxx(depth);
        PG_RETURN_TEXT_P(cstring_to_text("not reached"));
    }
    if (strcmp(mode, "ereport") == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("pg_warden selftest: plain ereport from a bridged function")));
    if (strcmp(mode, "counters") == 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "destroyed=%lld alive=%lld",
                 (long long) warden::selftest::destroyed(), (long long) warden::selftest::alive());
        PG_RETURN_TEXT_P(cstring_to_text(buf));
    }
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("unknown selftest mode \"%s\"", mode),
                    errhint("Use ok, cxx, std, bad_alloc, pg, ereport or counters.")));
    PG_RETURN_NULL();
}
