// Inserting an audit row into its partition of warden.audit_log without the planner, with
// what that needs built once per transaction and partition instead of once per row: the
// partition opened and its indexes opened (a ResultRelInfo and an EState, when it has
// any). The slot of the partition's layout is kept for the backend.
//
// The per-transaction state's memory (only when there are indexes) is a child of
// TopTransactionContext, and the relcache references it holds belong to the top
// transaction's resource owner, so that a subtransaction commit (a PL/pgSQL exception
// block, RELEASE SAVEPOINT) neither closes them nor warns of a leak. It is released:
//  - before the transaction commits or is prepared (XACT_EVENT_PRE_COMMIT/PRE_PREPARE),
//    so that no reference is left for the resource owner to warn about;
//  - when the subtransaction that built it, or one of its ancestors, aborts (its locks on
//    the indexes' table go with it);
//  - before any utility statement of this backend runs, so that DDL in the same
//    transaction (DROP INDEX, DETACH PARTITION, cleanup_audit) does not find the
//    partition or its indexes in use;
//  - when the relcache invalidates the partition, one of its indexes or the parent (the
//    next row builds it again, seeing a new index, say);
// and forgotten when the transaction aborts: the resource owner releases the references
// and TopTransactionContext goes.
#include "audit.h"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupconvert.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
}

namespace {

// The columns of warden.audit_log, in order (checked against the table).
const char* const audit_log_columns[] = {
    "logged_at", "op", "relid", "schema_name", "table_name", "record_key", "old_values",
    "new_values", "excluded_changed", "statement_at", "transaction_at", "txid",
    "session_user_name", "current_user_name", "actor", "application_name", "client_addr"};
static_assert(sizeof audit_log_columns / sizeof audit_log_columns[0] == WARDEN_AUDIT_LOG_NATTS,
              "the trigger fills WARDEN_AUDIT_LOG_NATTS columns");

// What a partition's rows need that outlasts transactions: a slot of the partition's layout
// and, when its columns differ from the parent's, the conversion and a copy of the
// parent's descriptor. Kept for the backend; a relcache invalidation (which opening the
// indexes or toasting a row may read) only marks it stale, the next row rebuilds it, so
// that nothing is freed under a row being formed or inserted.
struct Layout {
    Oid parent_oid;
    Oid partition_oid;
    bool stale;
    TupleTableSlot* slot;    // a slot of the partition's layout
    bool heap_slot;          // slot holds a HeapTuple as it is (a heap partition)
    TupleConversionMap* map; // from the parent's columns; null when they are the same
    TupleDesc parent_desc;   // for rows that need converting (map != null)
    MemoryContext context;   // child of CacheMemoryContext
};
Layout layout = {};

// What inserting into the partition needs for the rest of the transaction.
struct InsertState {
    bool active;
    Oid parent_oid;
    Oid partition_oid;
    Relation partition;      // referenced by TopTransactionResourceOwner
    ResultRelInfo* result;   // with the indexes open (ditto); null when there are none
    EState* estate;          // for the index insertions; null when there are none
    MemoryContext context;   // child of TopTransactionContext, when there are indexes
    SubTransactionId subid;  // the (sub)transaction that built it
    bool stale;              // the relcache invalidated what it holds
};
InsertState state = {};

// Set while a row is being inserted: nothing is released under its feet.
bool inserting = false;
// After PRE_COMMIT/PRE_PREPARE: a late row builds the state and releases it at once.
bool transaction_ending = false;
Oid checked_audit_log = InvalidOid;
ProcessUtility_hook_type prev_process_utility = nullptr;

void check_audit_log_layout(Relation parent)
{
    if (checked_audit_log == RelationGetRelid(parent))
        return;
    TupleDesc desc = RelationGetDescr(parent);
    bool ok = desc->natts == WARDEN_AUDIT_LOG_NATTS;
    for (int i = 0; ok && i < WARDEN_AUDIT_LOG_NATTS; i++)
        ok = !TupleDescAttr(desc, i)->attisdropped &&
             strcmp(NameStr(TupleDescAttr(desc, i)->attname), audit_log_columns[i]) == 0;
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("warden.audit_log does not have the columns this pg_warden library writes"),
                        errhint("ALTER EXTENSION pg_warden UPDATE, or restart the server after installing "
                                "the matching library.")));
    checked_audit_log = RelationGetRelid(parent);
}

// The parent and the partition are locked (warden_audit_target).
void build_layout(const AuditTarget& target)
{
    if (layout.context != nullptr) {
        ExecDropSingleTupleTableSlot(layout.slot);
        MemoryContextDelete(layout.context);
    }
    layout = Layout{};
    Relation parent = table_open(target.parent, NoLock);
    check_audit_log_layout(parent);
    Relation partition = table_open(target.partition, NoLock);
    MemoryContext context =
        AllocSetContextCreate(CacheMemoryContext, "pg_warden audit layout", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(context);
    layout.map = convert_tuples_by_name(RelationGetDescr(parent), RelationGetDescr(partition));
    if (layout.map != nullptr)
        layout.parent_desc = CreateTupleDescCopy(RelationGetDescr(parent));
    // A heap partition takes the row as a HeapTuple, formed once; any other table AM gets
    // it in a slot of its own kind. A copy of the descriptor: the relcache's is
    // reference-counted per resource owner.
    const TupleTableSlotOps* ops = table_slot_callbacks(partition);
    layout.heap_slot = ops == &TTSOpsBufferHeapTuple;
    layout.slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(partition)),
                                           layout.heap_slot ? &TTSOpsHeapTuple : ops);
    MemoryContextSwitchTo(old);
    table_close(partition, NoLock);
    table_close(parent, NoLock);
    layout.context = context;
    layout.parent_oid = target.parent;
    layout.partition_oid = target.partition;
}

// Closes what the state holds (without unlocking: the locks last until the transaction
// ends) and frees it.
void release_state()
{
    if (!state.active)
        return;
    ResourceOwner owner = CurrentResourceOwner;
    CurrentResourceOwner = TopTransactionResourceOwner;
    if (state.result != nullptr)
        for (int i = 0; i < state.result->ri_NumIndices; i++)
            if (state.result->ri_IndexRelationDescs[i] != nullptr)
                index_close(state.result->ri_IndexRelationDescs[i], NoLock);
    table_close(state.partition, NoLock);
    CurrentResourceOwner = owner;
    if (state.estate != nullptr)
        FreeExecutorState(state.estate);
    MemoryContext context = state.context;
    state = InsertState{};
    if (context != nullptr)
        MemoryContextDelete(context);
}

// After an abort the resource owner has released (or releases) the references and the
// memory goes with TopTransactionContext.
void forget_state()
{
    state = InsertState{};
    inserting = false;
}

void on_xact(XactEvent event, void*)
{
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PARALLEL_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
        release_state();
        transaction_ending = true;
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
        forget_state();
        transaction_ending = false;
        break;
    default:
        transaction_ending = false;
        break;
    }
}

void on_subxact(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*)
{
    // Subtransactions started after the aborting one are its descendants.
    if (event == SUBXACT_EVENT_ABORT_SUB && state.active && state.subid >= subid) {
        inserting = false;
        release_state();
    }
}

void on_relcache(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == layout.partition_oid || relid == layout.parent_oid)
        layout.stale = true;
    if (!state.active || state.stale)
        return;
    bool hit = relid == InvalidOid || relid == state.partition_oid || relid == state.parent_oid;
    for (int i = 0; !hit && state.result != nullptr && i < state.result->ri_NumIndices; i++)
        hit = state.result->ri_IndexRelationDescs[i] != nullptr &&
              RelationGetRelid(state.result->ri_IndexRelationDescs[i]) == relid;
    if (hit)
        state.stale = true;
}

// Statements that touch no relation keep the state.
bool keeps_state(Node* stmt)
{
    return IsA(stmt, TransactionStmt) || IsA(stmt, VariableSetStmt) || IsA(stmt, VariableShowStmt);
}

void audit_process_utility(PlannedStmt* pstmt, const char* query, bool read_only_tree,
                           ProcessUtilityContext context, ParamListInfo params, QueryEnvironment* env,
                           DestReceiver* dest, QueryCompletion* qc)
{
    if (state.active && !inserting && !keeps_state(pstmt->utilityStmt))
        release_state();
    if (prev_process_utility != nullptr)
        prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

// The partition is locked (warden_audit_target). Its reference and its indexes' belong to
// the top transaction's owner: they outlive subtransactions.
void build_state(const AuditTarget& target)
{
    ResourceOwner owner = CurrentResourceOwner;
    CurrentResourceOwner = TopTransactionResourceOwner;
    Relation partition = table_open(target.partition, NoLock);
    CurrentResourceOwner = owner;
    state.active = true;
    state.partition = partition;
    state.parent_oid = target.parent;
    state.partition_oid = target.partition;
    state.subid = GetCurrentSubTransactionId();
    if (!partition->rd_rel->relhasindex)
        return;
    List* indexes = RelationGetIndexList(partition);
    bool none = indexes == NIL;
    list_free(indexes);
    if (none)
        return;

    state.context = AllocSetContextCreate(TopTransactionContext, "pg_warden audit insert", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(state.context);
    state.estate = CreateExecutorState();
    ResultRelInfo* result = makeNode(ResultRelInfo);
    InitResultRelInfo(result, partition, 1, nullptr, 0);
    CurrentResourceOwner = TopTransactionResourceOwner;
    PG_TRY();
    {
        ExecOpenIndices(result, false);
    }
    PG_CATCH();
    {
        // An index that failed to open is left to the resource owner; the partition's
        // reference is closed by release_state.
        CurrentResourceOwner = owner;
        PG_RE_THROW();
    }
    PG_END_TRY();
    CurrentResourceOwner = owner;
    MemoryContextSwitchTo(old);
    state.result = result;
}

}  // namespace

void warden_audit_insert_init(void)
{
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
    CacheRegisterRelcacheCallback(on_relcache, (Datum) 0);
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = audit_process_utility;
}

void warden_audit_insert(TimestampTz ts, Datum* values, bool* nulls)
{
    // An index expression on the log that writes to an audited table would come back here
    // with the slot in use.
    if (inserting)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("an audit row was written while another one was being inserted"),
                        errhint("Indexes on warden.audit_log must not call functions that write to "
                                "audited tables.")));
    AuditTarget target;
    warden_audit_target(ts, &target);
    if (layout.stale || layout.partition_oid != target.partition || layout.parent_oid != target.parent)
        build_layout(target);
    if (state.active && (state.stale || state.partition_oid != target.partition ||
                         state.parent_oid != target.parent))
        release_state();
    if (!state.active)
        build_state(target);

    // Formed once, in the partition's layout, and owned by the slot: the table AM
    // inserts it as it is.
    TupleTableSlot* slot = layout.slot;
    HeapTuple tuple;
    if (layout.map == nullptr) {
        tuple = heap_form_tuple(slot->tts_tupleDescriptor, values, nulls);
    } else {
        HeapTuple row = heap_form_tuple(layout.parent_desc, values, nulls);
        tuple = execute_attr_map_tuple(row, layout.map);
        heap_freetuple(row);
    }
    inserting = true;
    PG_TRY();
    {
        if (layout.heap_slot)
            ExecStoreHeapTuple(tuple, slot, true);
        else
            ExecForceStoreHeapTuple(tuple, slot, true);
        table_tuple_insert(state.partition, slot, GetCurrentCommandId(true), 0, nullptr);
        if (state.result != nullptr) {
            ExecInsertIndexTuples(state.result, slot, state.estate, false, false, nullptr, NIL);
            ResetPerTupleExprContext(state.estate);
        }
    }
    PG_CATCH();
    {
        // The tuple lives in the failing (sub)transaction's memory: never freed later.
        ExecClearTuple(slot);
        inserting = false;
        PG_RE_THROW();
    }
    PG_END_TRY();
    ExecClearTuple(slot);
    inserting = false;
    if (transaction_ending)
        release_state();
}
