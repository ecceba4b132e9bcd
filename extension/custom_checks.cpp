// warden._custom_check_run(query): runs the query of one custom health check and returns
// its first column (the value, as text) and its second (the detail), if any.
//
// The query was written by a warden_admin member, but it is called from a SECURITY
// DEFINER function, that is with the extension owner's rights. So it runs as
// warden_monitor, the way VACUUM runs an index expression as the table's owner: the user
// switched with SECURITY_RESTRICTED_OPERATION (no SET ROLE, no temporary objects), the
// settings in a new GUC nest level with search_path pinned to pg_catalog, pg_temp and the
// transaction read-only, and a time limit (warden.custom_check_timeout) of its own, which
// leaves the caller's statement_timeout untouched. An error (or the time limit) propagates;
// warden._custom_check_evaluate() catches it in a subtransaction, whose abort restores the
// user and the settings.
#include "pg_headers.h"

extern "C" {
#include "access/htup_details.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timeout.h"
}

#include "bridge.h"
#include "health_settings.h"

namespace {

TimeoutId check_timeout = MAX_TIMEOUTS;
volatile sig_atomic_t check_timed_out = false;

// A signal handler: it only raises the flags a cancel request raises.
void on_check_timeout(void)
{
    check_timed_out = true;
    InterruptPending = true;
    QueryCancelPending = true;
    SetLatch(MyLatch);
}

// The query's one row, copied into the caller's memory context.
struct CheckRow {
    char* value;
    char* detail;
};

CheckRow run_query(const char* query, MemoryContext out)
{
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    SPIPlanPtr plan = SPI_prepare(query, 0, NULL);
    if (plan == NULL)
        elog(ERROR, "could not prepare the check query: %s", SPI_result_code_string(SPI_result));
    if (!SPI_is_cursor_plan(plan))
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("a custom check's query must be one query that returns rows"),
                        errhint("One SELECT returning a number and optionally a detail text.")));
    int rc = SPI_execute_plan(plan, NULL, NULL, false, 2);
    if (rc != SPI_OK_SELECT && rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_UPDATE_RETURNING &&
        rc != SPI_OK_DELETE_RETURNING)
        elog(ERROR, "check query failed: %s", SPI_result_code_string(rc));
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_CARDINALITY_VIOLATION),
                        errmsg("a custom check's query must return one row, not %s",
                               SPI_processed == 0 ? "none" : "several"),
                        errhint("Aggregate (count, max) or add LIMIT 1.")));
    TupleDesc desc = SPI_tuptable->tupdesc;
    HeapTuple row = SPI_tuptable->vals[0];
    CheckRow result = {NULL, NULL};
    MemoryContext spi = MemoryContextSwitchTo(out);
    char* value = SPI_getvalue(row, desc, 1);
    char* detail = desc->natts >= 2 ? SPI_getvalue(row, desc, 2) : NULL;
    result.value = value ? pstrdup(value) : NULL;
    result.detail = detail ? pstrdup(detail) : NULL;
    MemoryContextSwitchTo(spi);
    SPI_finish();
    return result;
}

}  // namespace

WARDEN_FUNCTION(warden_custom_check_run)
{
    char* query = text_to_cstring(PG_GETARG_TEXT_PP(0));
    TupleDesc desc;
    if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "warden._custom_check_run must return a record");
    desc = BlessTupleDesc(desc);
    Oid monitor = get_role_oid("warden_monitor", false);
    MemoryContext caller = CurrentMemoryContext;

    if (check_timeout == MAX_TIMEOUTS)
        check_timeout = RegisterTimeout(USER_TIMEOUT, on_check_timeout);

    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(monitor, saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                        SECURITY_RESTRICTED_OPERATION);
    int nest = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION,
                      GUC_ACTION_SAVE, true, 0, false);
    set_config_option("transaction_read_only", "on", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                      true, 0, false);

    check_timed_out = false;
    enable_timeout_after(check_timeout, warden_custom_check_timeout);
    CheckRow row = {NULL, NULL};
    PG_TRY();
    {
        row = run_query(query, caller);
    }
    PG_CATCH();
    {
        disable_timeout(check_timeout, false);
        if (check_timed_out) {
            // Ours, not the client's cancel request: report it as the check's own failure.
            MemoryContextSwitchTo(caller);
            FlushErrorState();
            check_timed_out = false;
            ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                            errmsg("timed out after %d ms (warden.custom_check_timeout)",
                                   warden_custom_check_timeout)));
        }
        PG_RE_THROW();
    }
    PG_END_TRY();
    disable_timeout(check_timeout, false);
    // The deadline may have passed between the last row and here: a cancel still pending
    // would hit the caller, which did nothing wrong.
    if (check_timed_out) {
        check_timed_out = false;
        QueryCancelPending = false;
    }

    AtEOXact_GUC(false, nest);
    SetUserIdAndSecContext(saved_user, saved_context);

    Datum values[2];
    bool nulls[2] = {row.value == NULL, row.detail == NULL};
    values[0] = row.value ? CStringGetTextDatum(row.value) : (Datum) 0;
    values[1] = row.detail ? CStringGetTextDatum(row.detail) : (Datum) 0;
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
