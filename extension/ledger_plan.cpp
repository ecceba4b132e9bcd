// warden._plan_migration: a migration run as `up` would run it, statement by statement, in
// a subtransaction that is rolled back, with what each statement did gathered on the way:
// the locks this backend took (from the lock manager), the tables the server rewrote (the
// table_rewrite event), the scans its ALTER TABLE subcommands imply, the size of every
// table it touched, how long it took. The core's rules (core/migration_risk) judge them.
// Everything runs as the caller: it is the caller's own script, and nothing of it stays.
#include "ledger.h"
#include "ledger_plan.h"
#include "ledger_plan_glue.hpp"

extern "C" {
#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "commands/event_trigger.h"
#include "commands/tablecmds.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/plancat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
}

#include "bridge.h"

int warden_statement_lock_timeout = 2000;
int warden_lock_retries = 5;

void warden_migration_safety_init(void)
{
    DefineCustomIntVariable(
        "warden.migration_statement_lock_timeout",
        "How long each statement of a migration waits for a lock before it gives up and retries.",
        "Queries queue behind a waiting lock request: this bounds how long they wait for a "
        "migration. 0 leaves lock_timeout alone and never retries.",
        &warden_statement_lock_timeout, 2000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL, NULL,
        NULL);
    DefineCustomIntVariable(
        "warden.migration_lock_retries",
        "How many times a migration statement that timed out waiting for a lock is retried.",
        "Each retry waits longer (250 ms doubling, at most 5 s) before trying again.",
        &warden_lock_retries, 5, 0, 1000, PGC_USERSET, 0, NULL, NULL, NULL);
}

// ---- table rewrites, from the server's table_rewrite event -----------------------------

static bool recording_rewrites = false;
static Oid rewritten[64];
static int rewrite_reasons[64];
static int rewrites = 0;

// warden._plan_table_rewrite(): an event trigger that notes, while a plan runs, which
// table the server is about to rewrite and why. Does nothing at any other time.
WARDEN_FUNCTION(warden_plan_table_rewrite)
{
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._plan_table_rewrite() must be called as an event trigger")));
    if (recording_rewrites && rewrites < (int) lengthof(rewritten)) {
        rewritten[rewrites] = DatumGetObjectId(pg_event_trigger_table_rewrite_oid(fcinfo));
        rewrite_reasons[rewrites] = DatumGetInt32(pg_event_trigger_table_rewrite_reason(fcinfo));
        rewrites++;
    }
    PG_RETURN_VOID();
}

// ---- what a statement takes, says and touches -----------------------------------------

bool ledger_statement_takes_access_exclusive(Node* stmt)
{
    switch (nodeTag(stmt)) {
    case T_AlterTableStmt:
        return AlterTableGetLockLevel(((AlterTableStmt*) stmt)->cmds) == AccessExclusiveLock;
    case T_DropStmt: {
        DropStmt* d = (DropStmt*) stmt;
        return (d->removeType == OBJECT_TABLE || d->removeType == OBJECT_MATVIEW ||
                d->removeType == OBJECT_VIEW || d->removeType == OBJECT_INDEX) &&
               !d->concurrent;
    }
    case T_RenameStmt:
        return ((RenameStmt*) stmt)->renameType == OBJECT_TABLE ||
               ((RenameStmt*) stmt)->renameType == OBJECT_COLUMN;
    case T_TruncateStmt:
    case T_ClusterStmt:
        return true;
    case T_RefreshMatViewStmt:
        return !((RefreshMatViewStmt*) stmt)->concurrent;
    case T_LockStmt:
        return ((LockStmt*) stmt)->mode == AccessExclusiveLock;
    default:
        return false;
    }
}

struct PlannedTable {
    Oid relid;
    char* name;
    double rows;
    double bytes;
    bool is_new;
    LOCKMASK locks;
    int rewrite_reason;
};

struct PlannedStatement {
    int line;
    char* text;
    bool ran;
    TimestampTz began;
    double duration_ms;
    StringInfo signals;
    PlannedTable* tables;
    int ntables;
};

struct MigrationPlan {
    List* statements;  // of PlannedStatement*
    PlannedStatement* current;
    // This backend's relation locks before the current statement.
    Oid* lock_relids;
    LOCKMASK* lock_masks;
    int nlocks;
};

// The size of a table and its row estimate, recorded once per statement. Only tables,
// partitioned tables and materialized views; NULL for anything else or a missing one.
static PlannedTable* measure(PlannedStatement* ps, Oid relid)
{
    for (int i = 0; i < ps->ntables; i++)
        if (ps->tables[i].relid == relid)
            return &ps->tables[i];
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        return NULL;
    Form_pg_class c = (Form_pg_class) GETSTRUCT(tuple);
    char kind = c->relkind;
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE && kind != RELKIND_MATVIEW) {
        ReleaseSysCache(tuple);
        return NULL;
    }
    char* name = quote_qualified_identifier(get_namespace_name(c->relnamespace),
                                            NameStr(c->relname));
    double reltuples = c->reltuples;
    BlockNumber relpages = c->relpages;
    ReleaseSysCache(tuple);

    ps->tables = ps->tables ? (PlannedTable*) repalloc(ps->tables, sizeof(PlannedTable) * (ps->ntables + 1))
                            : (PlannedTable*) palloc(sizeof(PlannedTable));
    PlannedTable* t = &ps->tables[ps->ntables++];
    memset(t, 0, sizeof *t);
    t->relid = relid;
    t->name = name;
    BlockNumber blocks = relpages;
    t->rows = reltuples > 0 ? reltuples : 0;
    // Never wait for a lock to measure: a table someone holds exclusively keeps its
    // catalog estimate.
    if (kind != RELKIND_PARTITIONED_TABLE && ConditionalLockRelationOid(relid, AccessShareLock)) {
        Relation rel = relation_open(relid, NoLock);
        t->is_new = rel->rd_createSubid != InvalidSubTransactionId;
        blocks = RelationGetNumberOfBlocks(rel);
        // The catalog's count when there is one: scaling it to the current size would
        // count dead rows (a rolled-back plan of a backfill leaves many) as rows.
        if (blocks == 0) {
            t->rows = 0;
        } else if (reltuples >= 0) {
            t->rows = reltuples;
        } else {
            // Never analyzed: the planner's density estimate, scaled to the real size.
            BlockNumber pages;
            double tuples, allvisfrac;
            estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
            t->rows = pages > 0 ? tuples * blocks / pages : 0;
        }
        relation_close(rel, NoLock);
    }
    t->bytes = (double) blocks * BLCKSZ;
    return t;
}

static void signal_begin(PlannedStatement* ps, const char* kind, PlannedTable* t)
{
    appendStringInfo(ps->signals, "%s{\"kind\": \"%s\", \"relation\": ",
                     ps->signals->len ? ", " : "", kind);
    escape_json(ps->signals, t->name);
}

static void signal_text(PlannedStatement* ps, const char* key, const char* value)
{
    appendStringInfo(ps->signals, ", \"%s\": ", key);
    escape_json(ps->signals, value ? value : "");
}

static void signal_flag(PlannedStatement* ps, const char* key, bool value)
{
    appendStringInfo(ps->signals, ", \"%s\": %s", key, value ? "true" : "false");
}

// Views and functions that use a table (attnum 0) or one of its columns: views through
// pg_depend; SQL-standard function bodies through pg_depend too; other function bodies
// by the names they mention (the table's, and the column's).
static char* dependents_json(Oid relid, AttrNumber attnum, const char* relname, const char* column)
{
    static const char* sql =
        "SELECT coalesce(pg_catalog.jsonb_agg(d ORDER BY d), '[]')::pg_catalog.text FROM ("
        "  SELECT 'view ' || v.oid::pg_catalog.regclass::pg_catalog.text AS d "
        "  FROM pg_catalog.pg_depend dep "
        "  JOIN pg_catalog.pg_rewrite r ON r.oid = dep.objid "
        "  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class "
        "  WHERE dep.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass "
        "    AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
        "    AND dep.refobjid = $1::pg_catalog.oid AND v.oid <> $1::pg_catalog.oid "
        "    AND ($2::pg_catalog.int4 = 0 OR dep.refobjsubid = $2::pg_catalog.int4) "
        "  UNION "
        "  SELECT 'function ' || p.oid::pg_catalog.regprocedure::pg_catalog.text "
        "  FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_proc p ON p.oid = dep.objid "
        "  WHERE dep.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass "
        "    AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
        "    AND dep.refobjid = $1::pg_catalog.oid "
        "    AND ($2::pg_catalog.int4 = 0 OR dep.refobjsubid = $2::pg_catalog.int4) "
        "  UNION "
        "  SELECT 'function ' || p.oid::pg_catalog.regprocedure::pg_catalog.text "
        "  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
        "  WHERE l.lanname NOT IN ('c', 'internal') "
        "    AND p.pronamespace NOT IN ('pg_catalog'::pg_catalog.regnamespace, "
        "        'information_schema'::pg_catalog.regnamespace, 'warden'::pg_catalog.regnamespace) "
        "    AND p.prosrc OPERATOR(pg_catalog.~*) ('\\m' || pg_catalog.regexp_replace($3, "
        "        '([^A-Za-z0-9_])', '\\\\\\1', 'g') || '\\M') "
        "    AND ($4 IS NULL OR p.prosrc OPERATOR(pg_catalog.~*) ('\\m' || "
        "        pg_catalog.regexp_replace($4, '([^A-Za-z0-9_])', '\\\\\\1', 'g') || '\\M'))"
        ") x";
    char oid[16], att[16];
    snprintf(oid, sizeof oid, "%u", relid);
    snprintf(att, sizeof att, "%d", (int) attnum);
    const char* args[] = {oid, att, relname, column};
    if (ledger_query(sql, 4, args, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read the dependents of relation %u", relid);
    return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

static void signal_dependents(PlannedStatement* ps, PlannedTable* t, const char* object,
                              const char* column)
{
    AttrNumber attnum = column ? get_attnum(t->relid, column) : 0;
    if (column && attnum == InvalidAttrNumber)
        attnum = -1;  // no such column: nothing can depend on it
    signal_text(ps, "object", object);
    signal_text(ps, "name", column ? psprintf("%s.%s", t->name, quote_identifier(column)) : t->name);
    appendStringInfo(ps->signals, ", \"dependents\": %s",
                     attnum < 0 ? "[]"
                                : dependents_json(t->relid, attnum, get_rel_name(t->relid), column));
}

// True when a validated CHECK (column IS NOT NULL) exists: SET NOT NULL then skips its scan.
static bool not_null_proven(Oid relid, const char* column)
{
    static const char* sql =
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint c "
        "  WHERE c.conrelid = $1::pg_catalog.oid AND c.contype = 'c' AND c.convalidated "
        "    AND pg_catalog.pg_get_constraintdef(c.oid) = "
        "        pg_catalog.format('CHECK ((%s IS NOT NULL))', pg_catalog.quote_ident($2)))";
    char oid[16];
    snprintf(oid, sizeof oid, "%u", relid);
    const char* args[] = {oid, column};
    if (ledger_query(sql, 2, args, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read the constraints of relation %u", relid);
    return strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;
}

static bool volatile_call_walker(Node* node, void* context)
{
    if (node == NULL)
        return false;
    if (IsA(node, FuncCall)) {
        FuncCandidateList c = FuncnameGetCandidates(((FuncCall*) node)->funcname, -1, NIL, false,
                                                    false, false, true);
        for (; c; c = c->next)
            if (func_volatile(c->oid) == PROVOLATILE_VOLATILE)
                return true;
    }
    return raw_expression_tree_walker(node, (bool (*)()) volatile_call_walker, context);
}

// A new column whose value is computed per row: a volatile default, serial, identity or
// a stored generated column. Such a column rewrites the table.
static bool column_default_volatile(ColumnDef* def)
{
    if (def->typeName && def->typeName->names) {
        const char* type = strVal(llast(def->typeName->names));
        if (strcmp(type, "serial") == 0 || strcmp(type, "bigserial") == 0 ||
            strcmp(type, "smallserial") == 0 || strcmp(type, "serial4") == 0 ||
            strcmp(type, "serial8") == 0 || strcmp(type, "serial2") == 0)
            return true;
    }
    ListCell* lc;
    foreach (lc, def->constraints) {
        Constraint* c = lfirst_node(Constraint, lc);
        if (c->contype == CONSTR_IDENTITY || c->contype == CONSTR_GENERATED)
            return true;
        if (c->contype == CONSTR_DEFAULT && volatile_call_walker(c->raw_expr, NULL))
            return true;
    }
    return false;
}

static void signal_constraint(PlannedStatement* ps, PlannedTable* t, Constraint* c)
{
    const char* kind = c->contype == CONSTR_CHECK       ? "check"
                       : c->contype == CONSTR_FOREIGN   ? "foreign_key"
                       : c->contype == CONSTR_UNIQUE    ? "unique"
                       : c->contype == CONSTR_PRIMARY   ? "primary_key"
                       : c->contype == CONSTR_EXCLUSION ? "exclusion"
                                                        : NULL;
    if (kind == NULL)
        return;
    signal_begin(ps, "add_constraint", t);
    signal_text(ps, "constraint", kind);
    signal_flag(ps, "not_valid", c->skip_validation);
    signal_flag(ps, "using_index", c->indexname != NULL);
    appendStringInfoChar(ps->signals, '}');
}

static void signal_alter_table(PlannedStatement* ps, PlannedTable* t, AlterTableCmd* cmd)
{
    switch (cmd->subtype) {
    case AT_AddConstraint:
        if (IsA(cmd->def, Constraint))
            signal_constraint(ps, t, (Constraint*) cmd->def);
        return;
    case AT_AddColumn: {
        ColumnDef* def = castNode(ColumnDef, cmd->def);
        signal_begin(ps, "add_column", t);
        signal_text(ps, "column", def->colname);
        signal_flag(ps, "volatile_default", column_default_volatile(def));
        appendStringInfoChar(ps->signals, '}');
        ListCell* lc;
        foreach (lc, def->constraints)
            signal_constraint(ps, t, lfirst_node(Constraint, lc));
        return;
    }
    case AT_AlterColumnType:
        signal_begin(ps, "alter_column_type", t);
        signal_text(ps, "column", cmd->name);
        break;
    case AT_SetNotNull:
        signal_begin(ps, "set_not_null", t);
        signal_text(ps, "column", cmd->name);
        signal_flag(ps, "proven", not_null_proven(t->relid, cmd->name));
        break;
    case AT_DropColumn:
        signal_begin(ps, "drop", t);
        signal_dependents(ps, t, "column", cmd->name);
        break;
    case AT_ValidateConstraint:
        signal_begin(ps, "validate_constraint", t);
        break;
    default:
        return;
    }
    appendStringInfoChar(ps->signals, '}');
}

static PlannedTable* table_of(PlannedStatement* ps, RangeVar* rv)
{
    Oid relid = rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
    return OidIsValid(relid) ? measure(ps, relid) : NULL;
}

// What the statement's parse tree says it will do, before it runs.
static void collect_signals(PlannedStatement* ps, Node* stmt)
{
    PlannedTable* t;
    ListCell* lc;
    switch (nodeTag(stmt)) {
    case T_IndexStmt:
        if ((t = table_of(ps, ((IndexStmt*) stmt)->relation))) {
            signal_begin(ps, "create_index", t);
            signal_flag(ps, "concurrently", ((IndexStmt*) stmt)->concurrent);
            appendStringInfoChar(ps->signals, '}');
        }
        break;
    case T_AlterTableStmt:
        if ((t = table_of(ps, ((AlterTableStmt*) stmt)->relation)))
            foreach (lc, ((AlterTableStmt*) stmt)->cmds)
                signal_alter_table(ps, t, lfirst_node(AlterTableCmd, lc));
        break;
    case T_RenameStmt: {
        RenameStmt* r = (RenameStmt*) stmt;
        if ((r->renameType == OBJECT_TABLE || r->renameType == OBJECT_COLUMN) &&
            (t = table_of(ps, r->relation))) {
            signal_begin(ps, "rename", t);
            signal_dependents(ps, t, r->renameType == OBJECT_TABLE ? "table" : "column",
                              r->renameType == OBJECT_COLUMN ? r->subname : NULL);
            appendStringInfoChar(ps->signals, '}');
        }
        break;
    }
    case T_UpdateStmt:
    case T_DeleteStmt: {
        RangeVar* rv = IsA(stmt, UpdateStmt) ? ((UpdateStmt*) stmt)->relation
                                             : ((DeleteStmt*) stmt)->relation;
        if ((t = table_of(ps, rv))) {
            signal_begin(ps, "write_rows", t);
            appendStringInfoChar(ps->signals, '}');
        }
        break;
    }
    case T_DropStmt:
        if (((DropStmt*) stmt)->removeType == OBJECT_TABLE)
            foreach (lc, ((DropStmt*) stmt)->objects)
                if ((t = table_of(ps, makeRangeVarFromNameList((List*) lfirst(lc))))) {
                    signal_begin(ps, "drop", t);
                    signal_dependents(ps, t, "table", NULL);
                    appendStringInfoChar(ps->signals, '}');
                }
        break;
    default:
        break;
    }
}

// This backend's relation locks in this database, user tables only.
static void lock_snapshot(Oid** relids, LOCKMASK** masks, int* n)
{
    LockData* data = GetLockStatusData();
    *relids = (Oid*) palloc(sizeof(Oid) * (data->nelements + 1));
    *masks = (LOCKMASK*) palloc(sizeof(LOCKMASK) * (data->nelements + 1));
    *n = 0;
    for (int i = 0; i < data->nelements; i++) {
        LockInstanceData* lock = &data->locks[i];
        if (lock->pid != MyProcPid || lock->locktag.locktag_type != LOCKTAG_RELATION ||
            lock->locktag.locktag_field1 != MyDatabaseId || lock->holdMask == 0 ||
            lock->locktag.locktag_field2 < FirstNormalObjectId)
            continue;
        Oid relid = lock->locktag.locktag_field2;
        int j = 0;
        while (j < *n && (*relids)[j] != relid)
            j++;
        if (j == *n) {
            (*relids)[j] = relid;
            (*masks)[j] = 0;
            (*n)++;
        }
        (*masks)[j] |= lock->holdMask;
    }
}

static PlannedStatement* new_statement(MigrationPlan* st, int line, const char* text)
{
    PlannedStatement* ps = (PlannedStatement*) palloc0(sizeof(PlannedStatement));
    ps->line = line;
    ps->text = pstrdup(text);
    ps->signals = makeStringInfo();
    st->statements = lappend(st->statements, ps);
    return ps;
}

static void plan_before(void* arg, RawStmt* raw, int line, const char* text)
{
    MigrationPlan* st = (MigrationPlan*) arg;
    PlannedStatement* ps = new_statement(st, line, text);
    st->current = ps;
    collect_signals(ps, raw->stmt);
    lock_snapshot(&st->lock_relids, &st->lock_masks, &st->nlocks);
    rewrites = 0;
    ps->began = GetCurrentTimestamp();
}

static void plan_after(void* arg)
{
    MigrationPlan* st = (MigrationPlan*) arg;
    PlannedStatement* ps = st->current;
    ps->ran = true;
    ps->duration_ms = (double) (GetCurrentTimestamp() - ps->began) / 1000.0;
    // Its locks were taken in its last attempt: the lock timeouts before it held none.
    ps->began = ledger_attempt_began;
    Oid* relids;
    LOCKMASK* masks;
    int n;
    lock_snapshot(&relids, &masks, &n);
    for (int i = 0; i < n; i++) {
        LOCKMASK before = 0;
        for (int j = 0; j < st->nlocks; j++)
            if (st->lock_relids[j] == relids[i])
                before = st->lock_masks[j];
        LOCKMASK taken = masks[i] & ~before;
        PlannedTable* t = taken ? measure(ps, relids[i]) : NULL;
        if (t)
            t->locks |= taken;
    }
    // A table the statement names ran under the strongest lock held on it, also when an
    // earlier statement took that lock.
    for (int t = 0; t < ps->ntables; t++) {
        for (int i = 0; i < n; i++)
            if (relids[i] == ps->tables[t].relid)
                for (int mode = MaxLockMode; mode >= 1; mode--)
                    if (masks[i] & LOCKBIT_ON(mode)) {
                        ps->tables[t].locks |= LOCKBIT_ON(mode);
                        break;
                    }
    }
    for (int i = 0; i < rewrites; i++) {
        PlannedTable* t = measure(ps, rewritten[i]);
        if (t)
            t->rewrite_reason |= rewrite_reasons[i];
    }
}

static void append_statement_json(StringInfo out, PlannedStatement* ps, TimestampTz ended)
{
    appendStringInfo(out, "{\"line\": %d, \"statement\": ", ps->line);
    escape_json(out, ps->text);
    double held = ps->ran ? (double) (ended - ps->began) / 1000.0 : 0;
    appendStringInfo(out, ", \"ran\": %s, \"duration_ms\": %.3f, \"held_ms\": %.3f, \"tables\": [",
                     ps->ran ? "true" : "false", ps->duration_ms, held);
    for (int i = 0; i < ps->ntables; i++) {
        PlannedTable* t = &ps->tables[i];
        appendStringInfoString(out, i ? ", {\"relation\": " : "{\"relation\": ");
        escape_json(out, t->name);
        appendStringInfo(out, ", \"rows\": %.0f, \"bytes\": %.0f, \"new\": %s, \"locks\": [",
                         t->rows, t->bytes, t->is_new ? "true" : "false");
        bool first = true;
        for (int mode = 1; mode <= MaxLockMode; mode++)
            if (t->locks & LOCKBIT_ON(mode)) {
                appendStringInfo(out, "%s\"%s\"", first ? "" : ", ",
                                 GetLockmodeName(DEFAULT_LOCKMETHOD, mode));
                first = false;
            }
        appendStringInfo(out, "], \"rewrite_reason\": %d}", t->rewrite_reason);
    }
    appendStringInfo(out, "], \"signals\": [%s]}", ps->signals->data);
}

// Runs the script in a subtransaction that is always rolled back.
static TimestampTz run_rolled_back(MigrationPlan* st, const char* what, const char* script)
{
    MemoryContext context = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    volatile TimestampTz ended = 0;
    BeginInternalSubTransaction(NULL);
    MemoryContextSwitchTo(context);
    recording_rewrites = true;
    PG_TRY();
    {
        // DDL of a plan is not drift.
        ledger_script_started();
        LedgerStatementObserver observer = {plan_before, plan_after, st};
        ledger_run_script_observed(what, script, &observer);
        ended = GetCurrentTimestamp();
    }
    PG_CATCH();
    {
        recording_rewrites = false;
        MemoryContextSwitchTo(context);
        ErrorData* edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(context);
        CurrentResourceOwner = owner;
        ReThrowError(edata);
    }
    PG_END_TRY();
    recording_rewrites = false;
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(context);
    CurrentResourceOwner = owner;
    return ended;
}

// A non-transactional migration can't be run and rolled back: its statements are judged
// by their parse trees and the tables they name.
static void classify_unrun(MigrationPlan* st, const char* what, const char* script)
{
    List* statements = ledger_parse_script(what, script);
    ListCell* lc;
    foreach (lc, statements) {
        RawStmt* raw = lfirst_node(RawStmt, lc);
        int start, end, line;
        ledger_statement_span(script, raw, &start, &end, &line);
        PlannedStatement* ps = new_statement(st, line, pnstrdup(script + start, end - start));
        collect_signals(ps, raw->stmt);
    }
}

static char* text_arg(FunctionCallInfo fcinfo, int n, const char* argname)
{
    if (PG_ARGISNULL(n))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("%s must not be NULL", argname)));
    return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static char* take_malloced(char* s)
{
    char* copy = pstrdup(s);
    free(s);
    return copy;
}

// warden._plan_migration(version, up_sql, run) -> jsonb: one object per statement (see
// core/migration_risk.hpp), judged against warden.migration_policy. run = false judges
// the text only, as for a non-transactional migration: `up` uses it to see whether a
// full plan is needed at all (no table with rows named: nothing can wait for it).
WARDEN_FUNCTION(warden_plan_migration_facts)
{
    char* version = text_arg(fcinfo, 0, "version");
    ledger_check_version(version, "version");
    char* script = text_arg(fcinfo, 1, "up_sql");
    char* what = psprintf("plan of migration %s", version);
    bool no_transaction = false;
    char* allow = take_malloced(
        warden::glue::script_allowances(script, strlen(script), what, &no_transaction));

    MemoryContext caller = CurrentMemoryContext;
    SPI_connect();
    static const char* policy_sql =
        "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('rule', p.rule, "
        "  'threshold', p.threshold, 'action', p.action) ORDER BY p.rule), '[]')::pg_catalog.text "
        "FROM warden.migration_policy p WHERE p.enabled";
    if (ledger_query(policy_sql, 0, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read warden.migration_policy");
    char* policy = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

    MigrationPlan st;
    memset(&st, 0, sizeof st);
    TimestampTz ended = 0;
    bool run = PG_NARGS() < 3 || PG_ARGISNULL(2) || PG_GETARG_BOOL(2);
    if (no_transaction || !run)
        classify_unrun(&st, what, script);
    else
        ended = run_rolled_back(&st, what, script);

    StringInfoData facts;
    initStringInfo(&facts);
    appendStringInfoString(&facts, "{\"statements\": [");
    ListCell* lc;
    foreach (lc, st.statements) {
        if (foreach_current_index(lc) > 0)
            appendStringInfoString(&facts, ", ");
        append_statement_json(&facts, (PlannedStatement*) lfirst(lc), ended);
    }
    appendStringInfo(&facts, "], \"policy\": %s, \"allow\": %s}", policy, allow);
    char* kept = MemoryContextStrdup(caller, facts.data);
    SPI_finish();

    char* judged = take_malloced(warden::glue::classify_plan(kept, strlen(kept)));
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(judged));
}

char* ledger_applied_detail(const char* up_sql)
{
    const char* waits = ledger_lock_waits_json();
    bool no_transaction = false;
    char* allow = take_malloced(
        warden::glue::script_allowances(up_sql, strlen(up_sql), "migration", &no_transaction));
    if (strcmp(waits, "[]") == 0 && strcmp(allow, "[]") == 0 && ledger_access_exclusive_since == 0)
        return NULL;
    StringInfoData out;
    initStringInfo(&out);
    appendStringInfo(&out, "{\"lock_waits\": %s, \"allow\": %s", waits, allow);
    if (ledger_access_exclusive_since != 0)
        appendStringInfo(&out, ", \"access_exclusive_ms\": %.3f",
                         (double) (GetCurrentTimestamp() - ledger_access_exclusive_since) / 1000.0);
    appendStringInfoChar(&out, '}');
    return out.data;
}
