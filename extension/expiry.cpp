// warden.session_valid(tbl, key_value): the check applications make on every request, so
// its query is prepared once per backend for each table and key type and then only
// executed. The query text comes from warden._session_valid_query() (identifiers quoted
// by format('%I')). A change to warden.expiry_policies drops every prepared query (its
// trigger sends a relcache invalidation); DDL on the table itself is handled by the plan
// cache, which replans from the same text.
#include "bridge.h"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

namespace {

struct QueryKey {
    Oid tbl;
    Oid key_type;
};

struct QueryEntry {
    QueryKey key;
    SPIPlanPtr plan;
};

HTAB* queries;
Oid policies_relid = InvalidOid;
bool queries_stale;

void policies_invalidate(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == policies_relid)
        queries_stale = true;
}

// Drops the prepared queries when the policies changed (not inside the callback, which
// may run at times when freeing plans is not safe).
void ensure_cache()
{
    if (queries == nullptr) {
        HASHCTL ctl;
        ctl.keysize = sizeof(QueryKey);
        ctl.entrysize = sizeof(QueryEntry);
        ctl.hcxt = TopMemoryContext;
        queries = hash_create("pg_warden session_valid queries", 16, &ctl,
                              HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
        CacheRegisterRelcacheCallback(policies_invalidate, (Datum) 0);
        queries_stale = true;
    }
    if (!queries_stale)
        return;
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, queries);
    for (QueryEntry* e; (e = static_cast<QueryEntry*>(hash_seq_search(&scan))) != nullptr;) {
        SPI_freeplan(e->plan);
        hash_search(queries, &e->key, HASH_REMOVE, nullptr);
    }
    policies_relid = get_relname_relid("expiry_policies", get_namespace_oid("warden", false));
    queries_stale = false;
}

SPIPlanPtr prepare(Oid tbl, Oid key_type)
{
    static SPIPlanPtr lookup;
    if (lookup == nullptr) {
        Oid types[1] = {REGCLASSOID};
        lookup = SPI_prepare("SELECT key_columns, query FROM warden._session_valid_query($1)", 1,
                             types);
        if (lookup == nullptr)
            elog(ERROR, "pg_warden: preparing the session_valid lookup failed: %s",
                 SPI_result_code_string(SPI_result));
        SPI_keepplan(lookup);
    }
    Datum args[1] = {ObjectIdGetDatum(tbl)};
    if (SPI_execute_plan(lookup, args, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "pg_warden: session_valid lookup failed");
    bool isnull = true;
    Datum query = (Datum) 0;
    if (SPI_processed == 1)
        query = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    const char* name = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(tbl)));
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("table %s is not registered for expiry", name),
                        errhint("Register it with warden.register_expiry().")));
    int32 columns = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
                                                &isnull));
    if (columns != 1)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("table %s has a key of %d columns", name, columns),
                        errhint("session_valid() looks rows up by a single-column key.")));
    Oid types[2] = {key_type, TIMESTAMPTZOID};
    SPIPlanPtr plan = SPI_prepare(TextDatumGetCString(query), 2, types);
    if (plan == nullptr)
        elog(ERROR, "pg_warden: preparing the session_valid query failed: %s",
             SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    return plan;
}

}  // namespace

WARDEN_FUNCTION(warden_session_valid)
{
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("table must not be NULL")));
    Oid tbl = PG_GETARG_OID(0);
    Oid key_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
    if (!OidIsValid(key_type))
        elog(ERROR, "pg_warden: could not determine the type of the key value");

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "pg_warden: SPI_connect failed");
    ensure_cache();
    QueryKey key{tbl, key_type};
    bool found;
    QueryEntry* entry = static_cast<QueryEntry*>(hash_search(queries, &key, HASH_FIND, &found));
    SPIPlanPtr plan = found ? entry->plan : nullptr;
    if (plan == nullptr) {
        plan = prepare(tbl, key_type);
        entry = static_cast<QueryEntry*>(hash_search(queries, &key, HASH_ENTER, &found));
        entry->plan = plan;
    }

    bool valid = false;
    if (!PG_ARGISNULL(1)) {
        Datum args[2] = {PG_GETARG_DATUM(1), TimestampTzGetDatum(GetCurrentTimestamp())};
        if (SPI_execute_plan(plan, args, nullptr, true, 1) != SPI_OK_SELECT)
            elog(ERROR, "pg_warden: session_valid query failed");
        bool isnull;
        if (SPI_processed == 1) {
            Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
            valid = !isnull && DatumGetBool(d);
        }
    }
    SPI_finish();
    PG_RETURN_BOOL(valid);
}
