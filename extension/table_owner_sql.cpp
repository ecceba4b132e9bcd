// warden._owner_execute() and warden._owner_count(): one statement on a user's table, run
// as that table's owner, never as pg_warden's owner.
//
// Expiry batches, the validation cast at registration, the expiry backlog and the
// sessions_active health check all touch tables that belong to someone else. The table's
// owner decides what runs there (triggers, rules, a domain's CHECK, a column type's
// operators); run as pg_warden's owner (a superuser) that code would run with superuser
// rights. So the statement runs as VACUUM and REFRESH MATERIALIZED VIEW run the owner's
// code: as the owner, under SECURITY_RESTRICTED_OPERATION (no temporary objects, no SET
// ROLE, nothing that outlives the statement), with search_path pinned in a GUC nest level.
// An error unwinds both: the (sub)transaction abort restores the user and the settings.
//
// The statement text comes from pg_warden's own SECURITY DEFINER functions (identifiers
// quoted with %I, literals with %L); these two are granted to nobody and refuse a caller
// that is not a superuser, so they are no way to run SQL as somebody else.
#include "bridge.h"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace {

struct OwnerContext {
    Oid saved_user;
    int saved_security;
    int nest_level;
};

// Locks the table against ALTER TABLE ... OWNER (which takes AccessExclusiveLock), then
// reads its owner: the statement runs as the role that owns the table while it runs.
Oid lock_and_get_owner(Oid relid)
{
    LockRelationOid(relid, AccessShareLock);
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("the table with OID %u no longer exists", relid)));
    Oid owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
}

void become_owner(Oid relid, OwnerContext* saved)
{
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("only pg_warden's own functions run statements as a table's owner")));
    Oid owner = lock_and_get_owner(relid);
    GetUserIdAndSecContext(&saved->saved_user, &saved->saved_security);
    SetUserIdAndSecContext(owner, saved->saved_security | SECURITY_LOCAL_USERID_CHANGE |
                                      SECURITY_RESTRICTED_OPERATION);
    saved->nest_level = NewGUCNestLevel();
    (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
}

void become_caller_again(const OwnerContext* saved)
{
    AtEOXact_GUC(false, saved->nest_level);
    SetUserIdAndSecContext(saved->saved_user, saved->saved_security);
}

// Runs the statement with $1 (a timestamptz, possibly NULL) inside SPI; the caller has
// connected. Returns the SPI result code.
int execute(text* query, Datum arg, bool arg_null)
{
    Oid types[1] = {TIMESTAMPTZOID};
    Datum values[1] = {arg};
    char nulls[2] = {arg_null ? 'n' : ' ', '\0'};
    int rc = SPI_execute_with_args(text_to_cstring(query), 1, types, values, nulls, false, 0);
    if (rc < 0)
        elog(ERROR, "pg_warden: statement on a table run as its owner failed: %s",
             SPI_result_code_string(rc));
    return rc;
}

void require_arguments(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("table and statement must not be NULL")));
}

}  // namespace

// warden._owner_execute(tbl, query, arg): runs a DELETE or UPDATE, returns the number of
// rows it processed. A security-restricted operation may not queue deferred triggers
// (they would fire at commit, as whoever commits): constraints are made immediate first,
// so that a DEFERRABLE foreign key or constraint trigger on the table fires within the
// statement, as the owner. That holds for the rest of the caller's transaction, which is
// one batch when the expiry procedures call this.
WARDEN_FUNCTION(warden_owner_execute)
{
    require_arguments(fcinfo);
    OwnerContext saved;
    become_owner(PG_GETARG_OID(0), &saved);
    SPI_connect();
    if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "pg_warden: SET CONSTRAINTS ALL IMMEDIATE failed");
    execute(PG_GETARG_TEXT_PP(1), PG_GETARG_DATUM(2), PG_ARGISNULL(2));
    int64 processed = (int64) SPI_processed;
    SPI_finish();
    become_caller_again(&saved);
    PG_RETURN_INT64(processed);
}

// warden._owner_count(tbl, query, arg, OUT n bigint, OUT oldest timestamptz): the one row
// of a query that returns (bigint, timestamptz), as counts and backlogs do (and the cast
// that checks a status value at registration).
WARDEN_FUNCTION(warden_owner_count)
{
    require_arguments(fcinfo);
    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "pg_warden: _owner_count must return a row");
    result_desc = BlessTupleDesc(result_desc);

    OwnerContext saved;
    become_owner(PG_GETARG_OID(0), &saved);
    SPI_connect();
    if (execute(PG_GETARG_TEXT_PP(1), PG_GETARG_DATUM(2), PG_ARGISNULL(2)) != SPI_OK_SELECT ||
        SPI_processed != 1 || SPI_tuptable->tupdesc->natts != 2 ||
        SPI_gettypeid(SPI_tuptable->tupdesc, 1) != INT8OID ||
        SPI_gettypeid(SPI_tuptable->tupdesc, 2) != TIMESTAMPTZOID)
        elog(ERROR, "pg_warden: a count run as the table's owner must return one (bigint, timestamptz) row");
    Datum values[2];
    bool nulls[2];
    values[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &nulls[0]);
    values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &nulls[1]);
    // Both are pass-by-value: nothing points into SPI's memory after SPI_finish.
    SPI_finish();
    become_caller_again(&saved);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, values, nulls)));
}
