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
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

#include "bridge.h"

WARDEN_FUNCTION(warden_record_drift)
{
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._record_drift() must be called as an event trigger")));
    // A superuser's restore recreates the schema with DDL before it reloads the ledger: that
    // is neither drift nor safe to log (the restored event ids would collide with new rows).
    // Any other bulk load can set warden.record_drift = off (superuser only).
    if (!warden_record_drift_setting || ledger_script_running || ledger_session_migration[0] ||
        creating_extension || ledger_restoring_dump())
        PG_RETURN_VOID();
    // DROP EXTENSION pg_warden fires this after the log itself is gone.
    Oid nsp = get_namespace_oid("warden", true);
    if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("migration_events", nsp)))
        PG_RETURN_VOID();

    EventTriggerData* trigger = (EventTriggerData*) fcinfo->context;
    const char* tag = GetCommandTagName(trigger->tag);
    bool dropping = strcmp(trigger->event, "sql_drop") == 0;
    // Temporary objects and pg_warden's own (partitions it maintains) are not drift. Run as
    // the caller, but on the pinned path of every ledger statement (ledger_query).
    const char* sql =
        dropping ? "SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
                   "  'type', object_type, 'identity', object_identity))::pg_catalog.text, "
                   "  count(*), count(*) "
                   "FROM pg_catalog.pg_event_trigger_dropped_objects() "
                   "WHERE original AND NOT is_temporary "
                   "AND coalesce(schema_name, '') <> 'warden'"
                 : "SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
                   "  'type', object_type, 'identity', object_identity)) "
                   "  FILTER (WHERE keep)::pg_catalog.text, "
                   "  count(*) FILTER (WHERE keep), count(*) "
                   "FROM (SELECT *, coalesce(schema_name, '') NOT LIKE 'pg\\_temp%' "
                   "        AND coalesce(schema_name, '') <> 'warden' "
                   // A trigger has no schema of its own: it is pg_warden's when its table is.
                   "        AND NOT (classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass "
                   "                 AND EXISTS (SELECT FROM pg_catalog.pg_trigger t "
                   "                   JOIN pg_catalog.pg_class r ON r.oid = t.tgrelid "
                   "                   WHERE t.oid = objid "
                   "                     AND r.relnamespace = 'warden'::pg_catalog.regnamespace)) "
                   "        AS keep "
                   "      FROM pg_catalog.pg_event_trigger_ddl_commands()) c";

    SPI_connect();
    // Not read-only: the catalog rows of the command that fired must be visible.
    if (ledger_query(sql, 0, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
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
        static const char* detail_sql = "SELECT pg_catalog.jsonb_build_object('command', $1, "
                                        "'objects', $2::pg_catalog.jsonb)::pg_catalog.text";
        const char* args[] = {tag, objects ? objects : "[]"};
        if (ledger_query(detail_sql, 2, args, true, 1) != SPI_OK_SELECT)
            elog(ERROR, "could not build the drift record");
        char* detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        ledger_event("drift", NULL, NULL, NULL, -1, detail);
    }
    SPI_finish();
    PG_RETURN_VOID();
}
