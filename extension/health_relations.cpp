// warden._table_stats() and warden._index_stats(): the per-table and per-index facts behind
// the health views, checks and report, in one pass over the catalogs each; and
// warden._database_pages() and warden._oldest_tables(), the report's other two looks at
// every relation.
//
// Written in C because the report reads every table and index of the database: with
// 10,000 tables and 20,000 indexes the same facts gathered in SQL (a pg_stat_get_* call per
// column per row, reloptions parsed per row, a window over pg_index for duplicates) cost
// a few hundred milliseconds, most of the report's budget. Here it is one heap scan of
// pg_class (and of pg_index), one statistics lookup per relation and a sort.
#include "pg_headers.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "funcapi.h"
#include "pgstat.h"
#include "postmaster/autovacuum.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include "bridge.h"

namespace {

// What autovacuum would use for a table: its reloptions first, then the settings.
struct AutovacuumRule {
    bool enabled;
    double vacuum_threshold, vacuum_scale;
    double analyze_threshold, analyze_scale;
};

AutovacuumRule autovacuum_rule(HeapTuple tuple, TupleDesc desc, char relkind)
{
    AutovacuumRule rule = {true, (double) autovacuum_vac_thresh, autovacuum_vac_scale,
                           (double) autovacuum_anl_thresh, autovacuum_anl_scale};
    bool isnull;
    Datum options = heap_getattr(tuple, Anum_pg_class_reloptions, desc, &isnull);
    // Partitioned tables have no autovacuum options (and are never vacuumed themselves).
    if (isnull || relkind == RELKIND_PARTITIONED_TABLE)
        return rule;
    StdRdOptions* std = (StdRdOptions*) heap_reloptions(relkind, options, false);
    if (std == NULL)
        return rule;
    const AutoVacOpts* av = &std->autovacuum;
    rule.enabled = av->enabled;
    if (av->vacuum_threshold >= 0)
        rule.vacuum_threshold = av->vacuum_threshold;
    if (av->vacuum_scale_factor >= 0)
        rule.vacuum_scale = av->vacuum_scale_factor;
    if (av->analyze_threshold >= 0)
        rule.analyze_threshold = av->analyze_threshold;
    if (av->analyze_scale_factor >= 0)
        rule.analyze_scale = av->analyze_scale_factor;
    pfree(std);
    return rule;
}

// The tables health looks at: those of the application, not the system's.
bool is_user_namespace(Oid nsp, Oid information_schema)
{
    return !IsCatalogNamespace(nsp) && !IsToastNamespace(nsp) && nsp != information_schema;
}

Datum timestamp_or_null(TimestampTz t, bool* isnull)
{
    *isnull = t == 0;
    return TimestampTzGetDatum(t);
}

enum TableColumn {
    T_RELID, T_SCHEMANAME, T_RELNAME, T_RELKIND, T_RELPAGES, T_RELTUPLES, T_LIVE, T_DEAD,
    T_MOD_SINCE_ANALYZE, T_LAST_VACUUM, T_LAST_AUTOVACUUM, T_LAST_ANALYZE, T_LAST_AUTOANALYZE,
    T_BLKS_HIT, T_BLKS_READ, T_AUTOVACUUM_DUE, T_AUTOANALYZE_DUE, T_AUTOVACUUM_ENABLED,
    T_XID_AGE, T_MXID_AGE, T_COLUMNS
};

}  // namespace

// One row per table, materialized view and partitioned table outside the system schemas.
WARDEN_FUNCTION(warden_table_stats)
{
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    Oid information_schema = get_namespace_oid("information_schema", true);
    Oid last_namespace = InvalidOid;  // tables come mostly grouped by schema
    NameData namespace_name;

    Relation pg_class = table_open(RelationRelationId, AccessShareLock);
    TupleDesc desc = RelationGetDescr(pg_class);
    SysScanDesc scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 0, NULL);
    HeapTuple tuple;
    while ((tuple = systable_getnext(scan)) != NULL) {
        Form_pg_class c = (Form_pg_class) GETSTRUCT(tuple);
        if (c->relkind != RELKIND_RELATION && c->relkind != RELKIND_MATVIEW &&
            c->relkind != RELKIND_PARTITIONED_TABLE)
            continue;
        if (!is_user_namespace(c->relnamespace, information_schema))
            continue;

        Datum values[T_COLUMNS];
        bool nulls[T_COLUMNS] = {};
        PgStat_StatTabEntry* s = pgstat_fetch_stat_tabentry(c->oid);
        PgStat_StatTabEntry none = {};
        if (s == NULL)
            s = &none;
        AutovacuumRule rule = autovacuum_rule(tuple, desc, c->relkind);
        double reltuples = c->reltuples > 0 ? c->reltuples : 0;

        values[T_RELID] = ObjectIdGetDatum(c->oid);
        if (c->relnamespace != last_namespace) {
            // NULL when the schema was dropped since the scan began: its tables are gone too.
            char* nspname = get_namespace_name(c->relnamespace);
            if (nspname == NULL)
                continue;
            last_namespace = c->relnamespace;
            namestrcpy(&namespace_name, nspname);
        }
        values[T_SCHEMANAME] = NameGetDatum(&namespace_name);
        values[T_RELNAME] = NameGetDatum(&c->relname);
        values[T_RELKIND] = CharGetDatum(c->relkind);
        values[T_RELPAGES] = Int32GetDatum(c->relpages);
        values[T_RELTUPLES] = Float4GetDatum(c->reltuples);
        values[T_LIVE] = Int64GetDatum(s->n_live_tuples);
        values[T_DEAD] = Int64GetDatum(s->n_dead_tuples);
        values[T_MOD_SINCE_ANALYZE] = Int64GetDatum(s->changes_since_analyze);
        values[T_LAST_VACUUM] = timestamp_or_null(s->vacuum_timestamp, &nulls[T_LAST_VACUUM]);
        values[T_LAST_AUTOVACUUM] =
            timestamp_or_null(s->autovac_vacuum_timestamp, &nulls[T_LAST_AUTOVACUUM]);
        values[T_LAST_ANALYZE] = timestamp_or_null(s->analyze_timestamp, &nulls[T_LAST_ANALYZE]);
        values[T_LAST_AUTOANALYZE] =
            timestamp_or_null(s->autovac_analyze_timestamp, &nulls[T_LAST_AUTOANALYZE]);
        values[T_BLKS_HIT] = Int64GetDatum(s->blocks_hit);
        values[T_BLKS_READ] = Int64GetDatum(s->blocks_fetched - s->blocks_hit);
        values[T_AUTOVACUUM_DUE] = BoolGetDatum(
            s->n_dead_tuples > rule.vacuum_threshold + rule.vacuum_scale * reltuples);
        values[T_AUTOANALYZE_DUE] = BoolGetDatum(
            s->changes_since_analyze > rule.analyze_threshold + rule.analyze_scale * reltuples);
        values[T_AUTOVACUUM_ENABLED] = BoolGetDatum(rule.enabled);
        // A partitioned table holds no rows of its own and has no frozen XID to age.
        nulls[T_XID_AGE] = !TransactionIdIsValid(c->relfrozenxid);
        nulls[T_MXID_AGE] = !MultiXactIdIsValid(c->relminmxid);
        values[T_XID_AGE] = nulls[T_XID_AGE] ? (Datum) 0
                                             : DirectFunctionCall1(xid_age, TransactionIdGetDatum(c->relfrozenxid));
        values[T_MXID_AGE] = nulls[T_MXID_AGE] ? (Datum) 0
                                               : DirectFunctionCall1(mxid_age, TransactionIdGetDatum(c->relminmxid));
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    systable_endscan(scan);
    table_close(pg_class, AccessShareLock);
    return (Datum) 0;
}

namespace {

// An index's access method and size estimate, from pg_class.
struct IndexClass {
    Oid oid;
    Oid relam;
    int32 relpages;
};

// An index and its definition: two indexes are duplicates when they are on the same table
// with the same access method and the same pg_index definition (key and INCLUDE columns,
// operator classes, collations, sort options, expressions and predicate), kept as one
// byte string.
struct IndexEntry {
    Oid indexrelid, indrelid;
    bool unique, primary, exclusion, valid;
    char* definition;
    int definition_len;
    const IndexClass* cls;
    Oid duplicate_of;
};

int compare_oids(Oid a, Oid b)
{
    return a < b ? -1 : (a > b ? 1 : 0);
}

Oid access_method(const IndexEntry* e)
{
    return e->cls ? e->cls->relam : InvalidOid;
}

int compare_classes(const void* a, const void* b)
{
    return compare_oids(((const IndexClass*) a)->oid, ((const IndexClass*) b)->oid);
}

int compare_by_indexrelid(const void* a, const void* b)
{
    return compare_oids(((const IndexEntry*) a)->indexrelid, ((const IndexEntry*) b)->indexrelid);
}

// Same table, then same definition; within a group of duplicates the one kept comes
// first: the primary key, else a unique index, else the oldest.
int compare_definitions(const void* pa, const void* pb)
{
    const IndexEntry* a = (const IndexEntry*) pa;
    const IndexEntry* b = (const IndexEntry*) pb;
    if (a->indrelid != b->indrelid)
        return compare_oids(a->indrelid, b->indrelid);
    if (access_method(a) != access_method(b))
        return compare_oids(access_method(a), access_method(b));
    if (a->definition_len != b->definition_len)
        return a->definition_len < b->definition_len ? -1 : 1;
    int c = memcmp(a->definition, b->definition, a->definition_len);
    if (c != 0)
        return c;
    if (a->primary != b->primary)
        return a->primary ? -1 : 1;
    if (a->unique != b->unique)
        return a->unique ? -1 : 1;
    return compare_oids(a->indexrelid, b->indexrelid);
}

bool same_definition(const IndexEntry* a, const IndexEntry* b)
{
    return a->indrelid == b->indrelid && access_method(a) == access_method(b) &&
           a->definition_len == b->definition_len &&
           memcmp(a->definition, b->definition, a->definition_len) == 0;
}

void append_varlena(StringInfo out, Datum value, bool isnull)
{
    if (isnull) {
        appendStringInfoChar(out, 'n');
        return;
    }
    struct varlena* v = PG_DETOAST_DATUM_PACKED(value);
    int32 len = VARSIZE_ANY_EXHDR(v);
    appendBinaryStringInfo(out, (const char*) &len, sizeof(len));
    appendBinaryStringInfo(out, VARDATA_ANY(v), len);
}

// The definition of one pg_index row as bytes (built in a reused buffer, kept as an exact
// copy: tens of thousands of indexes).
void read_definition(IndexEntry* e, HeapTuple tuple, TupleDesc desc, StringInfo buffer)
{
    Datum values[Natts_pg_index];
    bool nulls[Natts_pg_index];
    heap_deform_tuple(tuple, desc, values, nulls);
    resetStringInfo(buffer);
    static const int attributes[] = {Anum_pg_index_indkey, Anum_pg_index_indclass,
                                     Anum_pg_index_indcollation, Anum_pg_index_indoption,
                                     Anum_pg_index_indexprs, Anum_pg_index_indpred};
    for (int attnum : attributes)
        append_varlena(buffer, values[attnum - 1], nulls[attnum - 1]);
    e->definition = (char*) palloc(buffer->len);
    memcpy(e->definition, buffer->data, buffer->len);
    e->definition_len = buffer->len;
}

// Every index's pg_class facts, in OID order.
IndexClass* read_index_classes(int* count)
{
    int capacity = 1024, n = 0;
    IndexClass* classes = (IndexClass*) palloc(sizeof(IndexClass) * capacity);
    Relation pg_class = table_open(RelationRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 0, NULL);
    HeapTuple tuple;
    while ((tuple = systable_getnext(scan)) != NULL) {
        Form_pg_class c = (Form_pg_class) GETSTRUCT(tuple);
        if ((c->relkind != RELKIND_INDEX && c->relkind != RELKIND_PARTITIONED_INDEX) ||
            c->oid < FirstNormalObjectId)
            continue;
        if (n == capacity) {
            capacity *= 2;
            classes = (IndexClass*) repalloc(classes, sizeof(IndexClass) * capacity);
        }
        classes[n++] = IndexClass{c->oid, c->relam, c->relpages};
    }
    systable_endscan(scan);
    table_close(pg_class, AccessShareLock);
    // Heap order is mostly OID order already, which pg_qsort notices.
    qsort(classes, n, sizeof(IndexClass), compare_classes);
    *count = n;
    return classes;
}

// Every index's pg_index row, with its pg_class facts, in OID order.
IndexEntry* read_indexes(int* count)
{
    int n_classes;
    const IndexClass* classes = read_index_classes(&n_classes);
    Relation pg_index = table_open(IndexRelationId, AccessShareLock);
    TupleDesc desc = RelationGetDescr(pg_index);
    StringInfoData buffer;
    initStringInfo(&buffer);
    int capacity = 1024, n = 0;
    IndexEntry* entries = (IndexEntry*) palloc(sizeof(IndexEntry) * capacity);
    SysScanDesc scan = systable_beginscan(pg_index, InvalidOid, false, NULL, 0, NULL);
    HeapTuple tuple;
    while ((tuple = systable_getnext(scan)) != NULL) {
        Form_pg_index i = (Form_pg_index) GETSTRUCT(tuple);
        if (i->indexrelid < FirstNormalObjectId)
            continue;
        if (n == capacity) {
            capacity *= 2;
            entries = (IndexEntry*) repalloc(entries, sizeof(IndexEntry) * capacity);
        }
        IndexEntry* e = &entries[n++];
        *e = IndexEntry{i->indexrelid, i->indrelid, i->indisunique, i->indisprimary,
                        i->indisexclusion, i->indisvalid, NULL, 0, NULL, InvalidOid};
        read_definition(e, tuple, desc, &buffer);
    }
    systable_endscan(scan);
    qsort(entries, n, sizeof(IndexEntry), compare_by_indexrelid);
    for (int k = 0, c = 0; k < n; k++) {
        while (c < n_classes && classes[c].oid < entries[k].indexrelid)
            c++;
        if (c < n_classes && classes[c].oid == entries[k].indexrelid)
            entries[k].cls = &classes[c];
    }
    table_close(pg_index, AccessShareLock);
    *count = n;
    return entries;
}

enum IndexColumn {
    I_INDEXRELID, I_INDRELID, I_ESTIMATED_BYTES, I_UNIQUE, I_PRIMARY, I_INVALID, I_UNUSED,
    I_DUPLICATE_OF, I_COLUMNS
};

}  // namespace

// One row per index outside the system catalogs (OIDs from FirstNormalObjectId; TOAST
// indexes included, an invalid one is worth knowing about).
WARDEN_FUNCTION(warden_index_stats)
{
    // The checks want only the indexes worth a word: invalid, unused or duplicate.
    bool flagged_only = PG_GETARG_BOOL(0);
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    int n;
    IndexEntry* entries = read_indexes(&n);

    qsort(entries, n, sizeof(IndexEntry), compare_definitions);
    for (int k = 1; k < n; k++)
        if (same_definition(&entries[k - 1], &entries[k]))
            entries[k].duplicate_of = entries[k - 1].duplicate_of != InvalidOid
                                          ? entries[k - 1].duplicate_of
                                          : entries[k - 1].indexrelid;

    for (int k = 0; k < n; k++) {
        const IndexEntry* e = &entries[k];
        Datum values[I_COLUMNS];
        bool nulls[I_COLUMNS] = {};
        values[I_INDEXRELID] = ObjectIdGetDatum(e->indexrelid);
        values[I_INDRELID] = ObjectIdGetDatum(e->indrelid);
        values[I_ESTIMATED_BYTES] = Int64GetDatum((int64) (e->cls ? e->cls->relpages : 0) * BLCKSZ);
        values[I_UNIQUE] = BoolGetDatum(e->unique);
        values[I_PRIMARY] = BoolGetDatum(e->primary);
        values[I_INVALID] = BoolGetDatum(!e->valid);
        // Indexes behind a constraint are needed whether or not they are scanned, so
        // only the others cost a statistics lookup.
        bool unused = false;
        if (!e->unique && !e->primary && !e->exclusion) {
            PgStat_StatTabEntry* s = pgstat_fetch_stat_tabentry(e->indexrelid);
            unused = s == NULL || s->numscans == 0;
        }
        values[I_UNUSED] = BoolGetDatum(unused);
        if (flagged_only && e->valid && !unused && e->duplicate_of == InvalidOid)
            continue;
        values[I_DUPLICATE_OF] = ObjectIdGetDatum(e->duplicate_of);
        nulls[I_DUPLICATE_OF] = e->duplicate_of == InvalidOid;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}

// The pages of every relation of this database (pg_class.relpages summed): the
// database's size as the catalogs estimate it, without a stat() of each of its files.
// One plain heap scan of pg_class reading the fixed part of each row; the report asks
// twice (the database_size check and the databases section), so the sum is kept for the
// rest of the statement.
WARDEN_FUNCTION(warden_database_pages)
{
    static LocalTransactionId cached_transaction = InvalidLocalTransactionId;
    static TimestampTz cached_statement = 0;
    static int64 cached_pages = 0;
    if (cached_transaction == MyProc->lxid &&
        cached_statement == GetCurrentStatementStartTimestamp())
        PG_RETURN_INT64(cached_pages);

    int64 pages = 0;
    Relation pg_class = table_open(RelationRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 0, NULL);
    HeapTuple tuple;
    while ((tuple = systable_getnext(scan)) != NULL) {
        Form_pg_class c = (Form_pg_class) GETSTRUCT(tuple);
        if (c->relpages > 0)
            pages += c->relpages;
    }
    systable_endscan(scan);
    table_close(pg_class, AccessShareLock);
    cached_transaction = MyProc->lxid;
    cached_statement = GetCurrentStatementStartTimestamp();
    cached_pages = pages;
    PG_RETURN_INT64(pages);
}

namespace {

struct AgedRelation {
    Oid relid;
    int32 xid_age, mxid_age;
};

enum OldestColumn { O_RELID, O_XID_AGE, O_MXID_AGE, O_COLUMNS };

}  // namespace

// The max_rows tables, materialized views and TOAST tables (system catalogs included) with
// the oldest relfrozenxid, oldest first: what health_wraparound_tables ordered by xid_age
// gives, as a top-n kept during one scan of pg_class instead of a sort of every table.
WARDEN_FUNCTION(warden_oldest_tables)
{
    int32 max_rows = PG_GETARG_INT32(0);
    if (max_rows < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("max_rows must not be negative"),
                        errhint("Ask for 10 to get the ten oldest tables.")));
    max_rows = Min(max_rows, 10000);
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    AgedRelation* top = (AgedRelation*) palloc(sizeof(AgedRelation) * (max_rows + 1));
    int n = 0;

    Relation pg_class = table_open(RelationRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 0, NULL);
    HeapTuple tuple;
    while (max_rows > 0 && (tuple = systable_getnext(scan)) != NULL) {
        Form_pg_class c = (Form_pg_class) GETSTRUCT(tuple);
        if (c->relkind != RELKIND_RELATION && c->relkind != RELKIND_MATVIEW &&
            c->relkind != RELKIND_TOASTVALUE)
            continue;
        // age() as SQL computes it: an invalid XID is as old as can be.
        int32 xid = DatumGetInt32(DirectFunctionCall1(xid_age, TransactionIdGetDatum(c->relfrozenxid)));
        if (n == max_rows && xid <= top[n - 1].xid_age)
            continue;
        // Insertion into the sorted top (oldest first; on a tie the older entry stays first).
        int k = n < max_rows ? n++ : n - 1;
        while (k > 0 && top[k - 1].xid_age < xid) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = AgedRelation{c->oid, xid,
                              DatumGetInt32(DirectFunctionCall1(mxid_age, TransactionIdGetDatum(c->relminmxid)))};
    }
    systable_endscan(scan);
    table_close(pg_class, AccessShareLock);

    for (int k = 0; k < n; k++) {
        Datum values[O_COLUMNS] = {ObjectIdGetDatum(top[k].relid), Int32GetDatum(top[k].xid_age),
                                   Int32GetDatum(top[k].mxid_age)};
        bool nulls[O_COLUMNS] = {};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
