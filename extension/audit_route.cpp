// Routing an audit row to the partition of warden.audit_log that covers its time, by a
// binary search over the parent's partition bounds (kept in the relcache), so that the
// trigger can insert straight into the partition without planning an INSERT per row.
//
// The partition used last and its bounds are kept for the backend's lifetime, until the
// relcache invalidates the parent or the partition; the locks are taken once per
// transaction. (What inserting into the partition needs is audit_insert.cpp's.) A row whose time falls
// within the bounds of the partition used last costs no lock, no search, no relcache
// lookup and no allocation.
#include "audit.h"
#include "bridge.h"

extern "C" {
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace {

// Forgotten whenever the relation is invalidated (dropped with the extension, recreated).
Oid audit_log_oid = InvalidOid;

// The partition used last.
struct Binding {
    Oid parent;
    Oid partition;
    bool bounded;  // a range partition: rows within [lo, hi) go to it without a search
    TimestampTz lo;
    TimestampTz hi;
};
Binding binding = {};
// This (sub)transaction holds both locks of binding.
bool locked_in = false;

void forget_binding()
{
    binding = Binding{};
    locked_in = false;
}

void forget_audit_log(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == audit_log_oid)
        audit_log_oid = InvalidOid;
    if (relid == InvalidOid || relid == binding.parent || relid == binding.partition)
        forget_binding();
}

void end_of_transaction(XactEvent, void*)
{
    locked_in = false;
}

// Locks taken in an aborted subtransaction are released with it.
void end_of_subtransaction(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        locked_in = false;
}

// Once per backend: the server log says that maintenance is behind.
void warn_default_partition(TimestampTz ts)
{
    static bool warned = false;
    if (warned)
        return;
    warned = true;
    ereport(LOG, (errmsg("pg_warden: no partition of warden.audit_log covers %s; audit rows go to "
                         "warden.audit_log_default", timestamptz_to_str(ts)),
                  errhint("CALL warden.audit_maintenance() creates the partitions and moves the rows.")));
}

Oid lock_audit_log()
{
    Oid oid = audit_log_oid;
    if (OidIsValid(oid)) {
        LockRelationOid(oid, RowExclusiveLock);
        if (audit_log_oid == oid)
            return oid;
        UnlockRelationOid(oid, RowExclusiveLock);
    }
    oid = RangeVarGetRelidExtended(makeRangeVar(pstrdup("warden"), pstrdup("audit_log"), -1),
                                   RowExclusiveLock, 0, nullptr, nullptr);
    audit_log_oid = oid;
    return oid;
}

}  // namespace

void warden_audit_route_init(void)
{
    CacheRegisterRelcacheCallback(forget_audit_log, (Datum) 0);
    RegisterXactCallback(end_of_transaction, nullptr);
    RegisterSubXactCallback(end_of_subtransaction, nullptr);
}

namespace {

// The search: the partition covering ts, locked, with its bounds when it has them.
Oid route(TimestampTz ts, Relation* parent_out, bool* bounded, TimestampTz* lo, TimestampTz* hi)
{
    Relation parent = table_open(lock_audit_log(), NoLock);
    if (parent->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("warden.audit_log is not a partitioned table")));

    PartitionKey key = RelationGetPartitionKey(parent);
    PartitionDesc desc = RelationGetPartitionDesc(parent, true);
    PartitionBoundInfo bounds = desc->boundinfo;
    int index = -1;
    if (desc->nparts > 0 && bounds != nullptr) {
        if (bounds->ndatums > 0) {
            Datum value = TimestampTzGetDatum(ts);
            bool equal;
            int offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation,
                                                       bounds, 1, &value, &equal);
            index = bounds->indexes[offset + 1];
            *bounded = index >= 0 && offset >= 0 && offset + 1 < bounds->ndatums &&
                       bounds->kind[offset][0] == PARTITION_RANGE_DATUM_VALUE &&
                       bounds->kind[offset + 1][0] == PARTITION_RANGE_DATUM_VALUE;
            if (*bounded) {
                *lo = DatumGetTimestampTz(bounds->datums[offset][0]);
                *hi = DatumGetTimestampTz(bounds->datums[offset + 1][0]);
            }
        }
        if (index < 0) {
            index = bounds->default_index;
            warn_default_partition(ts);
        }
    }
    if (index < 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("no partition of warden.audit_log covers %s", timestamptz_to_str(ts)),
                        errdetail("The default partition warden.audit_log_default is missing."),
                        errhint("Recreate it: CREATE TABLE warden.audit_log_default "
                                "PARTITION OF warden.audit_log DEFAULT.")));

    Oid partition = desc->oids[index];
    // The parent's lock keeps the partition from being detached before this one is taken.
    LockRelationOid(partition, RowExclusiveLock);
    *parent_out = parent;
    return partition;
}

}  // namespace

Oid warden_audit_route(TimestampTz ts, Relation* parent_out)
{
    bool bounded = false;
    TimestampTz lo, hi;
    return route(ts, parent_out, &bounded, &lo, &hi);
}

void warden_audit_target(TimestampTz ts, AuditTarget* target)
{
    if (binding.bounded && ts >= binding.lo && ts < binding.hi) {
        if (!locked_in) {
            // Invalidations are read while locking: the binding may go away here.
            Oid parent = binding.parent, partition = binding.partition;
            LockRelationOid(parent, RowExclusiveLock);
            LockRelationOid(partition, RowExclusiveLock);
            locked_in = binding.partition == partition;
        }
        if (locked_in) {
            target->parent = binding.parent;
            target->partition = binding.partition;
            return;
        }
    }
    Relation parent;
    bool bounded = false;
    TimestampTz lo = 0, hi = 0;
    Oid partition_oid = route(ts, &parent, &bounded, &lo, &hi);
    binding.parent = RelationGetRelid(parent);
    binding.partition = partition_oid;
    binding.bounded = bounded;
    binding.lo = lo;
    binding.hi = hi;
    locked_in = true;
    target->parent = binding.parent;
    target->partition = binding.partition;
    table_close(parent, NoLock);
}

WARDEN_FUNCTION(warden_audit_partition_for)
{
    Relation parent;
    Oid partition = warden_audit_route(PG_GETARG_TIMESTAMPTZ(0), &parent);
    table_close(parent, NoLock);
    PG_RETURN_OID(partition);
}
