// The C++/PostgreSQL error bridge; see bridge.h for the rules it enforces.
#include <cstring>
#include <exception>
#include <new>

#include "bridge.h"

namespace {

// Plain data only: this is what survives the unwinding of the C++ frames.
struct CaughtError {
    char sqlstate[6];
    char message[1024];
    char detail[1024];
    char hint[512];
};

void copy_text(char* dst, std::size_t size, const char* src)
{
    std::strncpy(dst, src ? src : "", size - 1);
    dst[size - 1] = '\0';
}

void capture(CaughtError& out, const char* sqlstate, const char* message, const char* detail,
             const char* hint)
{
    copy_text(out.sqlstate, sizeof out.sqlstate, sqlstate);
    copy_text(out.message, sizeof out.message, message);
    copy_text(out.detail, sizeof out.detail, detail);
    copy_text(out.hint, sizeof out.hint, hint);
}

// Returns true when impl returned normally. Every C++ object created by impl is gone
// by the time this returns, whichever way it went.
bool call_catching(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo, Datum* result,
                   CaughtError& caught) noexcept
{
    try {
        *result = impl(fcinfo);
        return true;
    } catch (const warden::Error& e) {
        capture(caught, e.sqlstate().c_str(), e.what(), e.detail().c_str(), e.hint().c_str());
    } catch (const std::bad_alloc&) {
        capture(caught, "53200", "out of memory in pg_warden", "", "");
    } catch (const std::exception& e) {
        capture(caught, "XX000", e.what(), "", "");
    } catch (...) {
        capture(caught, "XX000", "unknown C++ exception in pg_warden", "", "");
    }
    return false;
}

int sqlstate_code(const char* s)
{
    if (std::strlen(s) != 5)
        return ERRCODE_INTERNAL_ERROR;
    return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

}  // namespace

Datum warden_bridge(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo)
{
    Datum result = (Datum) 0;
    CaughtError caught;
    if (call_catching(impl, fcinfo, &result, caught))
        return result;

    ereport(ERROR,
            (errcode(sqlstate_code(caught.sqlstate)), errmsg("%s", caught.message),
             caught.detail[0] ? errdetail("%s", caught.detail) : 0,
             caught.hint[0] ? errhint("%s", caught.hint) : 0));
    pg_unreachable();
}

namespace warden {

void rethrow_pg_error_as_cxx(MemoryContext safe_context)
{
    MemoryContextSwitchTo(safe_context);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();

    // Copy into plain buffers first so that freeing edata can't leak if a
    // std::string allocation throws below.
    CaughtError copy;
    capture(copy, unpack_sql_state(edata->sqlerrcode), edata->message, edata->detail,
            edata->hint);
    FreeErrorData(edata);
    throw PgError(copy.sqlstate, copy.message, copy.detail, copy.hint);
}

}  // namespace warden
