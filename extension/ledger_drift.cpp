// The drift recorder: an event trigger that logs DDL run while no migration is running,
// so that `warden migrate status` can say the schema changed outside the ledger, and where.
#include "ledger.h"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

#include "bridge.h"

WARDEN_FUNCTION(warden_record_drift)
{
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._record_drift() must be called as an event trigger")));
    if (!warden_record_drift_setting || ledger_script_running || ledger_session_migration[0] ||
        creating_extension)
        PG_RETURN_VOID();
    // DROP EXTENSION pg_warden fires this after the log itself is gone.
    Oid nsp = get_namespace_oid("warden", true);
    if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("migration_events", nsp)))
        PG_RETURN_VOID();

    EventTriggerData* trigger = (EventTriggerData*) fcinfo->context;
    const char* tag = GetCommandTagName(trigger->tag);
    bool dropping = strcmp(trigger->event, "sql_drop") == 0;
    // Temporary objects and pg_warden's own (partitions it maintains) are not drift.
    const char* sql =
        dropping ? "SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
                   "  'type', object_type, 'identity', object_identity))::text, count(*), count(*) "
                   "FROM pg_catalog.pg_event_trigger_dropped_objects() "
                   "WHERE original AND NOT is_temporary "
                   "AND coalesce(schema_name, '') <> 'warden'"
                 : "SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
                   "  'type', object_type, 'identity', object_identity)) FILTER (WHERE keep)::text, "
                   "  count(*) FILTER (WHERE keep), count(*) "
                   "FROM (SELECT *, coalesce(schema_name, '') NOT LIKE 'pg\\_temp%' "
                   "        AND coalesce(schema_name, '') <> 'warden' AS keep "
                   "      FROM pg_catalog.pg_event_trigger_ddl_commands()) c";

    SPI_connect();
    if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read the DDL commands of the event trigger");
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    char* objects = SPI_getvalue(row, desc, 1);
    long kept = atol(SPI_getvalue(row, desc, 2));
    long total = atol(SPI_getvalue(row, desc, 3));
    // A DROP is logged by its sql_drop firing, which knows what was dropped.
    bool skip = (kept == 0 && total > 0) || (dropping && kept == 0) ||
                (!dropping && kept == 0 && strncmp(tag, "DROP ", 5) == 0);
    if (!skip) {
        const char* args[] = {tag, objects ? objects : "[]"};
        Oid types[2] = {TEXTOID, TEXTOID};
        Datum values[2] = {CStringGetTextDatum(args[0]), CStringGetTextDatum(args[1])};
        if (SPI_execute_with_args("SELECT pg_catalog.jsonb_build_object('command', $1, "
                                  "'objects', $2::jsonb)::text",
                                  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
            elog(ERROR, "could not build the drift record");
        char* detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        ledger_event("drift", NULL, NULL, NULL, -1, detail);
    }
    SPI_finish();
    PG_RETURN_VOID();
}
