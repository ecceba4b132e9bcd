// The migration ledger's SQL functions: apply, rollback, baseline, the non-transactional
// protocol and repair. Scripts run as the caller in the caller's transaction; ledger rows
// are written as the ledger's owner (ledger_state.cpp).
#include "checksum_glue.hpp"
#include "ledger_glue.hpp"
#include "ledger.h"
#include "ledger_plan.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "bridge.h"

static const char* kChecksumAlgorithm = "sha256-bom-crlf-v1";

static char* text_arg(FunctionCallInfo fcinfo, int n, const char* argname)
{
    if (PG_ARGISNULL(n))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("%s must not be NULL", argname)));
    return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static char* checksum_of(const char* script)
{
    char* hex = (char*) palloc(65);
    warden::glue::script_checksum(script, strlen(script), hex);
    return hex;
}

static double ms_since(TimestampTz start)
{
    return (double) (GetCurrentTimestamp() - start) / 1000.0;
}

static void check_no_session_migration(void)
{
    if (ledger_session_migration[0])
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("non-transactional migration %s is still open in this session",
                        ledger_session_migration),
                 errhint("Call warden.finish_migration('%s') or warden.fail_migration first.",
                         ledger_session_migration)));
}

// The arguments shared by apply_migration and begin_migration, checked.
struct MigrationArgs {
    char* version;
    char* name;
    char* up_sql;
    char* down_sql;
    char* checksum;
    char* down_checksum;
    bool allow_out_of_order;
    bool no_transaction;
};

static MigrationArgs migration_args(FunctionCallInfo fcinfo)
{
    MigrationArgs a;
    a.version = text_arg(fcinfo, 0, "version");
    ledger_check_version(a.version, "version");
    a.name = text_arg(fcinfo, 1, "name");
    if (a.name[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration %s has an empty name", a.version)));
    a.up_sql = text_arg(fcinfo, 2, "up_sql");
    a.down_sql = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
    a.allow_out_of_order = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
    a.no_transaction = warden::glue::script_no_transaction(
        a.up_sql, strlen(a.up_sql), psprintf("migration %s (%s)", a.version, a.name));
    a.checksum = checksum_of(a.up_sql);
    a.down_checksum = a.down_sql ? checksum_of(a.down_sql) : NULL;
    return a;
}

// Decides, under the migration lock, whether a migration runs: false to skip it (applied
// with the same checksum, or covered by a baseline); errors on a modified or out-of-order
// migration.
static bool should_run(const MigrationArgs& a)
{
    ledger_check_not_blocked();
    static const char* sql =
        "SELECT m.state, m.checksum, m.baseline, m.name, "
        "  (SELECT max(version_number) FROM warden.migrations WHERE state = 'applied') "
        "     > $1::numeric AS later_applied, "
        "  (SELECT max(version) FROM warden.migrations WHERE state = 'applied' "
        "     AND version_number = (SELECT max(version_number) FROM warden.migrations "
        "                           WHERE state = 'applied')) AS latest, "
        "  coalesce((SELECT max(version_number) FROM warden.migrations WHERE baseline) "
        "     >= $1::numeric, false) AS below_baseline "
        "FROM (SELECT 1) one LEFT JOIN warden.migrations m ON m.version_number = $1::numeric";
    const char* args[] = {a.version};
    int rc = ledger_query(sql, 1, args, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read warden.migrations");
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    char* state = SPI_getvalue(t, d, 1);
    char* checksum = SPI_getvalue(t, d, 2);
    char* baseline = SPI_getvalue(t, d, 3);
    char* applied_name = SPI_getvalue(t, d, 4);
    char* later = SPI_getvalue(t, d, 5);
    char* latest = SPI_getvalue(t, d, 6);
    char* below_baseline = SPI_getvalue(t, d, 7);

    if (state && strcmp(state, "applied") == 0) {
        // A restored or hand-made row may lack a checksum: that never matches a file.
        if (strcmp(baseline, "t") == 0 || (checksum && strcmp(checksum, a.checksum) == 0))
            return false;
        if (!checksum)
            checksum = pstrdup("(none)");
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("migration %s (%s) was applied with a different checksum", a.version,
                        applied_name),
                 errdetail("Applied checksum %s, given checksum %s.", checksum, a.checksum),
                 errhint("An applied migration must not change; add a new migration instead.")));
    }
    if (!state && strcmp(below_baseline, "t") == 0)
        return false;
    if (later && strcmp(later, "t") == 0 && !a.allow_out_of_order)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("migration %s is older than the latest applied migration %s", a.version,
                        latest),
                 errhint("Pass allow_out_of_order => true (warden migrate up "
                         "--allow-out-of-order) to apply it anyway.")));
    return true;
}

static const char* kUpsert =
    "INSERT INTO warden.migrations AS m (version, name, checksum, checksum_algorithm, down_sql, "
    "  down_checksum, state, transactional, started_at, applied_at, execution_ms, "
    "  applied_by_session, applied_by_current, application_name, client_addr, transaction_id, "
    "  runner_pid, runner_backend_start, error) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::boolean, $9::pg_catalog.timestamptz, "
    "  CASE WHEN $7 = 'applied' THEN pg_catalog.clock_timestamp() END, $10::double precision, "
    "  session_user, $11, pg_catalog.current_setting('application_name'), "
    "  pg_catalog.inet_client_addr(), pg_catalog.pg_current_xact_id(), $12::integer, "
    "  CASE WHEN $12 IS NOT NULL THEN (SELECT backend_start FROM pg_catalog.pg_stat_activity "
    "   WHERE pid = $12::integer) END, NULL) "
    "ON CONFLICT (version_number) DO UPDATE SET version = excluded.version, name = excluded.name, "
    "  checksum = excluded.checksum, checksum_algorithm = excluded.checksum_algorithm, "
    "  down_sql = excluded.down_sql, down_checksum = excluded.down_checksum, "
    "  state = excluded.state, transactional = excluded.transactional, baseline = false, "
    "  started_at = excluded.started_at, applied_at = excluded.applied_at, "
    "  execution_ms = excluded.execution_ms, applied_by_session = excluded.applied_by_session, "
    "  applied_by_current = excluded.applied_by_current, "
    "  application_name = excluded.application_name, client_addr = excluded.client_addr, "
    "  transaction_id = excluded.transaction_id, runner_pid = excluded.runner_pid, "
    "  runner_backend_start = excluded.runner_backend_start, error = NULL";

static void upsert_row(const MigrationArgs& a, const char* state, TimestampTz started,
                       double execution_ms)
{
    char ms[64], pid[16];
    snprintf(ms, sizeof ms, "%.3f", execution_ms);
    snprintf(pid, sizeof pid, "%d", MyProcPid);
    bool running = strcmp(state, "running") == 0;
    const char* args[] = {a.version, a.name, a.checksum, kChecksumAlgorithm, a.down_sql,
                          a.down_checksum, state, a.no_transaction ? "false" : "true",
                          timestamptz_to_str(started), running ? NULL : ms,
                          GetUserNameFromId(GetUserId(), false), running ? pid : NULL};
    ledger_write(kUpsert, 12, args);
}

static char* describe(const char* action, const char* version, const char* name)
{
    return psprintf("%s %s (%s)", action, version, name);
}

WARDEN_FUNCTION(warden_apply_migration)
{
    MigrationArgs a = migration_args(fcinfo);
    if (a.no_transaction)
        ereport(ERROR,
                (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                 errmsg("migration %s (%s) is marked \"-- warden:no-transaction\"", a.version,
                        a.name),
                 errdetail("Its statements must run outside a transaction block."),
                 errhint("Use warden migrate up, or warden.begin_migration, the script, then "
                         "warden.finish_migration (see docs/migrations.md).")));
    check_no_session_migration();
    ledger_lock();

    SPI_connect();
    if (!should_run(a)) {
        SPI_finish();
        PG_RETURN_TEXT_P(cstring_to_text("skipped"));
    }
    TimestampTz started = GetCurrentTimestamp();
    ledger_script_started();
    ledger_run_script(describe("migration", a.version, a.name), a.up_sql);
    ledger_script_ended();
    double ms = ms_since(started);
    upsert_row(a, "applied", started, ms);
    ledger_event("applied", a.version, a.name, a.checksum, ms, ledger_applied_detail(a.up_sql));
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text("applied"));
}

// The role a stored down script runs as: the one that applied its migration, which was
// the caller then. Refuses (nothing rolled back yet) when that role is unknown or gone, or
// when the caller lacks its privileges: running as it must give the caller nothing more,
// since the script runs in the caller's session (search_path, objects the caller made).
static Oid down_script_runner(const char* version, const char* applied_by)
{
    static const char* hint = "A down script runs only as the role that applied its migration. "
                              "Undo the migration by hand or with a new migration.";
    if (applied_by == NULL)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("cannot roll back migration %s: the ledger does not say which "
                               "role applied it",
                               version),
                        errdetail("Nothing was rolled back."), errhint("%s", hint)));
    Oid role = get_role_oid(applied_by, true);
    if (!OidIsValid(role))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("cannot roll back migration %s: role \"%s\", which applied it, "
                               "no longer exists",
                               version, applied_by),
                        errdetail("Nothing was rolled back."), errhint("%s", hint)));
    if (!has_privs_of_role(GetUserId(), role))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("cannot roll back migration %s: it was applied by role \"%s\"", version,
                        applied_by),
                 errdetail("Its down script runs as \"%s\", whose privileges role \"%s\" does "
                           "not have. Nothing was rolled back.",
                           applied_by, GetUserNameFromId(GetUserId(), false)),
                 errhint("Roll it back as \"%s\" or as a role that has its privileges.",
                         applied_by)));
    return role;
}

WARDEN_FUNCTION(warden_rollback_migration)
{
    char* target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
    if (target)
        ledger_check_version(target, "target version");
    check_no_session_migration();
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    ledger_lock();

    SPI_connect();
    ledger_check_not_blocked();
    static const char* sql =
        "SELECT version, name, down_sql, baseline, applied_by_current FROM warden.migrations "
        "WHERE state = 'applied' AND ($1 IS NULL OR version_number > $1::numeric) "
        "ORDER BY version_number DESC LIMIT CASE WHEN $1 IS NULL THEN 1 END";
    const char* args[] = {target};
    int rc = ledger_query(sql, 1, args, false, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    SPITupleTable* rows = SPI_tuptable;
    uint64 n = SPI_processed;

    // Every down script must exist before the first one runs.
    StringInfoData missing;
    initStringInfo(&missing);
    for (uint64 i = 0; i < n; i++) {
        char* version = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
        bool no_down = SPI_getvalue(rows->vals[i], rows->tupdesc, 3) == NULL;
        bool baseline = strcmp(SPI_getvalue(rows->vals[i], rows->tupdesc, 4), "t") == 0;
        if (no_down || baseline)
            appendStringInfo(&missing, "%s%s%s", missing.len ? ", " : "", version,
                             baseline ? " (baseline)" : "");
    }
    if (missing.len)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("cannot roll back: no down script for %s", missing.data),
                        errdetail("Nothing was rolled back.")));
    for (uint64 i = 0; i < n; i++) {
        char* version = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
        char* down_sql = SPI_getvalue(rows->vals[i], rows->tupdesc, 3);
        if (warden::glue::script_no_transaction(down_sql, strlen(down_sql),
                                                describe("down script of migration", version, "")))
            ereport(ERROR,
                    (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                     errmsg("the down script of migration %s is marked \"-- warden:no-transaction\"",
                            version),
                     errdetail("Its statements must run outside a transaction block. Nothing was "
                               "rolled back."),
                     errhint("Use warden migrate down, or warden.begin_rollback, the script, then "
                             "warden.finish_rollback (see docs/migrations.md).")));
    }
    Oid* runners = (Oid*) palloc(sizeof(Oid) * (n > 0 ? n : 1));
    for (uint64 i = 0; i < n; i++)
        runners[i] = down_script_runner(SPI_getvalue(rows->vals[i], rows->tupdesc, 1),
                                        SPI_getvalue(rows->vals[i], rows->tupdesc, 5));

    for (uint64 i = 0; i < n; i++) {
        char* version = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
        char* name = SPI_getvalue(rows->vals[i], rows->tupdesc, 2);
        char* down_sql = SPI_getvalue(rows->vals[i], rows->tupdesc, 3);
        TimestampTz started = GetCurrentTimestamp();
        ledger_script_started();
        ledger_run_script_as(runners[i], describe("rollback of migration", version, name),
                             down_sql);
        ledger_script_ended();
        double ms = ms_since(started);
        const char* args[] = {version};
        ledger_write("UPDATE warden.migrations SET state = 'rolled_back', "
                     "applied_at = NULL, execution_ms = NULL WHERE version = $1",
                     1, args);
        ledger_event("rolled_back", version, name, checksum_of(down_sql), ms, NULL);
        Datum out[1] = {CStringGetTextDatum(version)};
        bool out_nulls[1] = {false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
    }
    SPI_finish();
    return (Datum) 0;
}

WARDEN_FUNCTION(warden_baseline_migrations)
{
    char* version = text_arg(fcinfo, 0, "version");
    ledger_check_version(version, "version");
    char* name = text_arg(fcinfo, 1, "name");
    check_no_session_migration();
    ledger_lock();

    SPI_connect();
    static const char* sql = "SELECT 1 FROM warden.migrations WHERE state <> 'rolled_back' LIMIT 1";
    if (ledger_query(sql, 0, NULL, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    if (SPI_processed > 0)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("cannot baseline: the ledger already has migrations"),
                 errhint("A baseline adopts an existing database before its first migration.")));
    const char* args[] = {version, name, GetUserNameFromId(GetUserId(), false)};
    ledger_write(
        "INSERT INTO warden.migrations AS m (version, name, state, baseline, started_at, "
        "  applied_at, execution_ms, applied_by_session, applied_by_current, application_name, "
        "  client_addr, transaction_id) "
        "VALUES ($1, $2, 'applied', true, pg_catalog.clock_timestamp(), "
        "  pg_catalog.clock_timestamp(), 0, session_user, $3, "
        "  pg_catalog.current_setting('application_name'), pg_catalog.inet_client_addr(), "
        "  pg_catalog.pg_current_xact_id()) "
        "ON CONFLICT (version_number) DO UPDATE SET version = excluded.version, "
        "  name = excluded.name, state = 'applied', baseline = true, checksum = NULL, "
        "  down_sql = NULL, down_checksum = NULL, applied_at = excluded.applied_at",
        3, args);
    ledger_event("baseline", version, name, NULL, -1, NULL);
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text(version));
}

WARDEN_FUNCTION(warden_begin_migration)
{
    MigrationArgs a = migration_args(fcinfo);
    if (IsTransactionBlock())
        ereport(ERROR,
                (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                 errmsg("warden.begin_migration must run outside a transaction block"),
                 errdetail("The 'running' row must be committed before the script runs.")));
    check_no_session_migration();
    // The transaction lock makes the checks safe; the session lock, taken when this
    // transaction commits its 'running' row, keeps other migrations out until finish or
    // fail commits, or until this session ends.
    ledger_lock();
    SPI_connect();
    if (!should_run(a)) {
        SPI_finish();
        PG_RETURN_TEXT_P(cstring_to_text("skipped"));
    }
    a.no_transaction = true;
    upsert_row(a, "running", GetCurrentTimestamp(), 0);
    ledger_event("started", a.version, a.name, a.checksum, -1, NULL);
    SPI_finish();
    ledger_set_session_migration(a.version);
    PG_RETURN_TEXT_P(cstring_to_text("started"));
}

static void check_open_migration(const char* version)
{
    if (strcmp(ledger_session_migration, version) != 0)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("migration %s was not begun in this session", version),
                 ledger_session_migration[0]
                     ? errdetail("This session has begun migration %s.", ledger_session_migration)
                     : errdetail("This session has no open non-transactional migration.")));
}

// Closes this session's non-transactional migration as applied or failed.
static void close_migration(const char* version, const char* state, const char* error)
{
    check_open_migration(version);
    SPI_connect();
    char* invalid = strcmp(state, "failed") == 0 ? ledger_invalid_indexes_json() : NULL;
    const char* args[] = {version, state, error};
    ledger_write("UPDATE warden.migrations SET state = $2, error = $3, runner_pid = NULL, "
                 "  runner_backend_start = NULL, "
                 "  applied_at = CASE WHEN $2 = 'applied' THEN pg_catalog.clock_timestamp() END, "
                 "  execution_ms = extract(epoch FROM pg_catalog.clock_timestamp() - started_at) "
                 "                 * 1000 "
                 "WHERE version = $1 RETURNING name, checksum, execution_ms",
                 3, args);
    if (SPI_processed != 1)
        elog(ERROR, "migration %s has no ledger row", version);
    char* name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    char* checksum = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
    char* ms_text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
    double ms = ms_text ? atof(ms_text) : 0;
    char* detail = NULL;
    if (invalid) {
        static const char* sql = "SELECT pg_catalog.jsonb_build_object('error', $1, "
                                 "'invalid_indexes', $2::pg_catalog.jsonb)::pg_catalog.text";
        const char* detail_args[] = {error ? error : "", invalid};
        ledger_query(sql, 2, detail_args, false, 1);
        detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        if (strcmp(invalid, "[]") != 0)
            ereport(WARNING,
                    (errmsg("migration %s left invalid indexes behind: %s", version, invalid),
                     errhint("Drop them (DROP INDEX CONCURRENTLY) before retrying.")));
    }
    ledger_event(state, version, name, checksum, ms, detail);
    SPI_finish();
    ledger_set_session_migration("");
}

WARDEN_FUNCTION(warden_finish_migration)
{
    char* version = text_to_cstring(PG_GETARG_TEXT_PP(0));
    close_migration(version, "applied", NULL);
    PG_RETURN_TEXT_P(cstring_to_text("applied"));
}

WARDEN_FUNCTION(warden_fail_migration)
{
    char* version = text_arg(fcinfo, 0, "version");
    char* error = PG_ARGISNULL(1) ? pstrdup("unknown error") : text_to_cstring(PG_GETARG_TEXT_PP(1));
    close_migration(version, "failed", error);
    PG_RETURN_TEXT_P(cstring_to_text("failed"));
}

WARDEN_FUNCTION(warden_repair_migration)
{
    char* version = text_arg(fcinfo, 0, "version");
    ledger_check_version(version, "version");
    char* resolution = text_arg(fcinfo, 1, "resolution");
    if (strcmp(resolution, "retry") != 0 && strcmp(resolution, "applied") != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("unknown resolution \"%s\"", resolution),
                        errhint("Use 'retry' (run it again) or 'applied' (it was completed "
                                "by hand).")));
    check_no_session_migration();
    // A runner still at work holds the session lock, so this waits for it or times out.
    ledger_lock();

    SPI_connect();
    static const char* sql =
        "SELECT name, state, checksum FROM warden.migrations WHERE version_number = $1::numeric";
    const char* version_arg[] = {version};
    if (ledger_query(sql, 1, version_arg, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("migration %s is not in the ledger", version)));
    char* name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    char* state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
    char* checksum = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
    if (strcmp(state, "failed") != 0 && strcmp(state, "running") != 0)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("migration %s (%s) needs no repair", version, name),
                 errdetail("Its state is %s; only failed or interrupted migrations are repaired.",
                           state)));
    char* invalid = ledger_invalid_indexes_json();
    const char* new_state = strcmp(resolution, "retry") == 0 ? "rolled_back" : "applied";
    const char* args[] = {version, new_state};
    ledger_write("UPDATE warden.migrations SET state = $2, runner_pid = NULL, "
                 "  runner_backend_start = NULL, "
                 "  applied_at = CASE WHEN $2 = 'applied' THEN pg_catalog.clock_timestamp() END "
                 "WHERE version_number = $1::numeric",
                 2, args);
    static const char* detail_sql =
        "SELECT pg_catalog.jsonb_build_object('resolution', $1, 'previous_state', $2, "
        "'invalid_indexes', $3::pg_catalog.jsonb)::pg_catalog.text";
    const char* detail_args[] = {resolution, state, invalid};
    ledger_query(detail_sql, 3, detail_args, false, 1);
    char* detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    ledger_event("repaired", version, name, checksum, -1, detail);
    if (strcmp(invalid, "[]") != 0)
        ereport(WARNING, (errmsg("invalid indexes remain: %s", invalid),
                          errhint("A failed CREATE INDEX CONCURRENTLY leaves its index invalid; "
                                  "drop it before the migration runs again.")));
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text(strcmp(new_state, "applied") == 0 ? "applied" : "pending"));
}

WARDEN_FUNCTION(warden_record_migration_failure)
{
    char* version = text_arg(fcinfo, 0, "version");
    ledger_check_version(version, "version");
    char* name = text_arg(fcinfo, 1, "name");
    char* error = text_arg(fcinfo, 2, "error");
    SPI_connect();
    static const char* sql = "SELECT pg_catalog.jsonb_build_object('error', $1)::pg_catalog.text";
    const char* args[] = {error};
    ledger_query(sql, 1, args, false, 1);
    char* detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    ledger_event("failed", version, name, NULL, -1, detail);
    SPI_finish();
    PG_RETURN_VOID();
}

// warden.rollback_plan(to_version) -> (version, name, no_transaction, down_checksum): the
// applied migrations `warden.rollback_migration(to_version)` would roll back, newest
// first, and whether each down script must run outside a transaction.
WARDEN_FUNCTION(warden_rollback_plan)
{
    char* target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
    if (target)
        ledger_check_version(target, "target version");
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    SPI_connect();
    static const char* sql =
        "SELECT version, name, coalesce(down_sql, ''), down_checksum FROM warden.migrations "
        "WHERE state = 'applied' AND ($1 IS NULL OR version_number > $1::numeric) "
        "ORDER BY version_number DESC LIMIT CASE WHEN $1 IS NULL THEN 1 END";
    const char* args[] = {target};
    if (ledger_query(sql, 1, args, true, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple t = SPI_tuptable->vals[i];
        TupleDesc d = SPI_tuptable->tupdesc;
        char* version = SPI_getvalue(t, d, 1);
        char* down_sql = SPI_getvalue(t, d, 3);
        char* down_checksum = SPI_getvalue(t, d, 4);
        bool no_transaction = warden::glue::script_no_transaction(
            down_sql, strlen(down_sql), describe("down script of migration", version, ""));
        Datum out[4] = {CStringGetTextDatum(version), CStringGetTextDatum(SPI_getvalue(t, d, 2)),
                        BoolGetDatum(no_transaction),
                        down_checksum ? CStringGetTextDatum(down_checksum) : (Datum) 0};
        bool nulls[4] = {false, false, false, down_checksum == NULL};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
    }
    SPI_finish();
    return (Datum) 0;
}

// warden.begin_rollback(version) -> the down script: the non-transactional protocol for a
// down script marked "-- warden:no-transaction". Outside a transaction block; commits the
// latest applied migration's row as 'running' and holds the session-level migration lock,
// as begin_migration does. The client runs the returned script statement by statement,
// as the caller, then warden.finish_rollback (the row becomes rolled back) or
// warden.fail_migration (failed: repair 'retry' accepts the rollback as done, 'applied'
// the migration as still applied).
WARDEN_FUNCTION(warden_begin_rollback)
{
    char* version = text_arg(fcinfo, 0, "version");
    ledger_check_version(version, "version");
    if (IsTransactionBlock())
        ereport(ERROR,
                (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                 errmsg("warden.begin_rollback must run outside a transaction block"),
                 errdetail("The 'running' row must be committed before the script runs.")));
    check_no_session_migration();
    ledger_lock();
    MemoryContext caller = CurrentMemoryContext;
    SPI_connect();
    ledger_check_not_blocked();
    static const char* sql =
        "SELECT version, name, down_sql, baseline, applied_by_current, "
        "  version_number = $1::numeric FROM warden.migrations "
        "WHERE state = 'applied' ORDER BY version_number DESC LIMIT 1";
    const char* version_arg[] = {version};
    if (ledger_query(sql, 1, version_arg, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("migration %s is not applied", version),
                        errdetail("No migration is applied.")));
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    char* latest = SPI_getvalue(t, d, 1);
    if (strcmp(SPI_getvalue(t, d, 6), "t") != 0)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("migration %s is not the latest applied migration", version),
                 errdetail("The latest applied migration is %s; roll back newest first.", latest)));
    char* name = SPI_getvalue(t, d, 2);
    char* down_sql = SPI_getvalue(t, d, 3);
    if (down_sql == NULL || strcmp(SPI_getvalue(t, d, 4), "t") == 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("cannot roll back: no down script for %s", latest),
                        errdetail("Nothing was rolled back.")));
    (void) down_script_runner(latest, SPI_getvalue(t, d, 5));
    char pid[16];
    snprintf(pid, sizeof pid, "%d", MyProcPid);
    const char* args[] = {latest, pid};
    ledger_write("UPDATE warden.migrations SET state = 'running', error = NULL, "
                 "  started_at = pg_catalog.clock_timestamp(), runner_pid = $2::integer, "
                 "  runner_backend_start = (SELECT backend_start FROM pg_catalog.pg_stat_activity "
                 "                          WHERE pid = $2::integer) "
                 "WHERE version = $1",
                 2, args);
    ledger_event("started", latest, name, checksum_of(down_sql), -1, "{\"rollback\": true}");
    MemoryContext spi = MemoryContextSwitchTo(caller);
    text* script = cstring_to_text(down_sql);
    // The session's migration carries the ledger's spelling of the version.
    char* kept = pstrdup(latest);
    MemoryContextSwitchTo(spi);
    SPI_finish();
    ledger_set_session_migration(kept);
    PG_RETURN_TEXT_P(script);
}

// warden.finish_rollback(version): closes a rollback begun by begin_rollback.
WARDEN_FUNCTION(warden_finish_rollback)
{
    char* version = text_arg(fcinfo, 0, "version");
    close_migration(version, "rolled_back", NULL);
    PG_RETURN_TEXT_P(cstring_to_text("rolled_back"));
}

// warden.adopt_migration(version, name, up_sql, down_sql, source) -> 'adopted' or
// 'skipped': records a migration another tool applied (source: its name) as applied
// with today's checksum of its file, without running it, and logs a baseline event naming
// the tool. Skipped when already applied with the same checksum; refused when applied
// with another.
WARDEN_FUNCTION(warden_adopt_migration)
{
    MigrationArgs a;
    a.version = text_arg(fcinfo, 0, "version");
    ledger_check_version(a.version, "version");
    a.name = text_arg(fcinfo, 1, "name");
    if (a.name[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration %s has an empty name", a.version)));
    a.up_sql = text_arg(fcinfo, 2, "up_sql");
    a.down_sql = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
    char* source = text_arg(fcinfo, 4, "source");
    // Another tool's history may have applied versions in any order.
    a.allow_out_of_order = true;
    a.no_transaction = warden::glue::script_no_transaction(
        a.up_sql, strlen(a.up_sql), psprintf("migration %s (%s)", a.version, a.name));
    a.checksum = checksum_of(a.up_sql);
    a.down_checksum = a.down_sql ? checksum_of(a.down_sql) : NULL;
    check_no_session_migration();
    ledger_lock();

    SPI_connect();
    if (!should_run(a)) {
        SPI_finish();
        PG_RETURN_TEXT_P(cstring_to_text("skipped"));
    }
    upsert_row(a, "applied", GetCurrentTimestamp(), 0);
    static const char* sql =
        "SELECT pg_catalog.jsonb_build_object('adopted_from', $1)::pg_catalog.text";
    const char* args[] = {source};
    ledger_query(sql, 1, args, false, 1);
    char* detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    ledger_event("baseline", a.version, a.name, a.checksum, -1, detail);
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text("adopted"));
}

// warden.apply_repeatable(name, script) -> 'applied' or 'skipped': a repeatable migration
// (Flyway's R__name.sql) run as the caller in the caller's transaction when its checksum
// differs from the one last applied, with its row and an applied event ({"repeatable":
// true}); the row commits with the script.
WARDEN_FUNCTION(warden_apply_repeatable)
{
    char* name = text_arg(fcinfo, 0, "name");
    char* script = text_arg(fcinfo, 1, "script");
    if (name[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("a repeatable migration needs a name")));
    char* what = psprintf("repeatable migration %s", name);
    if (warden::glue::script_no_transaction(script, strlen(script), what))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s is marked \"-- warden:no-transaction\"", what),
                        errdetail("Repeatable migrations run in a transaction.")));
    char* checksum = checksum_of(script);
    check_no_session_migration();
    ledger_lock();

    SPI_connect();
    ledger_check_not_blocked();
    static const char* sql = "SELECT checksum FROM warden.repeatable_migrations WHERE name = $1";
    const char* name_arg[] = {name};
    if (ledger_query(sql, 1, name_arg, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.repeatable_migrations");
    if (SPI_processed == 1) {
        char* applied = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        if (applied && strcmp(applied, checksum) == 0) {
            SPI_finish();
            PG_RETURN_TEXT_P(cstring_to_text("skipped"));
        }
    }
    TimestampTz started = GetCurrentTimestamp();
    ledger_script_started();
    ledger_run_script(what, script);
    ledger_script_ended();
    double ms = ms_since(started);
    char ms_text[64];
    snprintf(ms_text, sizeof ms_text, "%.3f", ms);
    const char* args[] = {name, checksum, kChecksumAlgorithm, ms_text,
                          GetUserNameFromId(GetUserId(), false)};
    ledger_write("INSERT INTO warden.repeatable_migrations AS r (name, checksum, checksum_algorithm, "
                 "  applied_at, execution_ms, applied_by) "
                 "VALUES ($1, $2, $3, pg_catalog.clock_timestamp(), $4::double precision, $5) "
                 "ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, "
                 "  checksum_algorithm = excluded.checksum_algorithm, applied_at = excluded.applied_at, "
                 "  execution_ms = excluded.execution_ms, applied_by = excluded.applied_by, "
                 "  applications = r.applications + 1",
                 5, args);
    ledger_event("applied", NULL, name, checksum, ms, "{\"repeatable\": true}");
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text("applied"));
}
