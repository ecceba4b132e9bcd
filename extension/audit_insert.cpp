// Inserting an audit row into its partition of warden.audit_log without the planner, with
// what that needs built once per transaction and partition instead of once per row: the
// partition opened, its indexes opened (a ResultRelInfo and an EState, when it has any)
// and a slot of its own layout.
//
// The state is kept in a child of TopTransactionContext, and the relcache references it
// holds belong to the top transaction's resource owner, so that a subtransaction commit
// (a PL/pgSQL exception block, RELEASE SAVEPOINT) neither closes them nor warns of a leak.
// It is released:
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

struct InsertState {
    Oid parent_oid;
    Oid partition_oid;
    Relation partition;      // referenced by TopTransactionResourceOwner
    ResultRelInfo* result;   // with the indexes open (ditto); null when there are none
    EState* estate;          // for the index insertions; null when there are none
    TupleTableSlot* slot;    // a slot of the partition's layout
    bool heap_slot;          // slot holds a HeapTuple as it is (a heap partition)
    TupleDesc parent_desc;   // a copy, for rows that need converting (map != null)
    SubTransactionId subid;  // the (sub)transaction that built it
    bool stale;              // the relcache invalidated what it holds
    MemoryContext context;
};

InsertState* state = nullptr;
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

// Closes what the state holds (without unlocking: the locks last until the transaction
// ends) and frees it.
void release_state()
{
    if (state == nullptr)
        return;
    ResourceOwner owner = CurrentResourceOwner;
    CurrentResourceOwner = TopTransactionResourceOwner;
    if (state->result != nullptr)
        for (int i = 0; i < state->result->ri_NumIndices; i++)
            if (state->result->ri_IndexRelationDescs[i] != nullptr)
                index_close(state->result->ri_IndexRelationDescs[i], NoLock);
    if (state->partition != nullptr)
        table_close(state->partition, NoLock);
    CurrentResourceOwner = owner;
    if (state->estate != nullptr)
        FreeExecutorState(state->estate);
    ExecDropSingleTupleTableSlot(state->slot);
    MemoryContext context = state->context;
    state = nullptr;
    MemoryContextDelete(context);
}

// After an abort the resource owner has released (or releases) the references and the
// memory goes with TopTransactionContext.
void forget_state()
{
    state = nullptr;
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
    if (event == SUBXACT_EVENT_ABORT_SUB && state != nullptr && state->subid >= subid) {
        inserting = false;
        release_state();
    }
}

void on_relcache(Datum, Oid relid)
{
    if (state == nullptr || state->stale)
        return;
    bool hit = relid == InvalidOid || relid == state->partition_oid || relid == state->parent_oid;
    for (int i = 0; !hit && state->result != nullptr && i < state->result->ri_NumIndices; i++)
        hit = state->result->ri_IndexRelationDescs[i] != nullptr &&
              RelationGetRelid(state->result->ri_IndexRelationDescs[i]) == relid;
    if (hit)
        state->stale = true;
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
    if (state != nullptr && !inserting && !keeps_state(pstmt->utilityStmt))
        release_state();
    if (prev_process_utility != nullptr)
        prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

// The partition and the parent are locked (warden_audit_target).
void build_state(const AuditTarget& target)
{
    MemoryContext context =
        AllocSetContextCreate(TopTransactionContext, "pg_warden audit insert", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(context);
    InsertState* s = (InsertState*) palloc0(sizeof(InsertState));
    s->context = context;
    s->parent_oid = target.parent;
    s->partition_oid = target.partition;
    s->subid = GetCurrentSubTransactionId();

    Relation parent = table_open(target.parent, NoLock);
    check_audit_log_layout(parent);
    if (target.map != nullptr)
        s->parent_desc = CreateTupleDescCopy(RelationGetDescr(parent));
    table_close(parent, NoLock);

    // The references outlive subtransactions: the top transaction's owner holds them.
    ResourceOwner owner = CurrentResourceOwner;
    CurrentResourceOwner = TopTransactionResourceOwner;
    PG_TRY();
    {
        s->partition = table_open(target.partition, NoLock);
        if (s->partition->rd_rel->relhasindex) {
            s->estate = CreateExecutorState();
            s->result = makeNode(ResultRelInfo);
            InitResultRelInfo(s->result, s->partition, 1, nullptr, 0);
            ExecOpenIndices(s->result, false);
        }
    }
    PG_CATCH();
    {
        // An index that failed to open is left to the resource owner.
        if (s->partition != nullptr)
            table_close(s->partition, NoLock);
        CurrentResourceOwner = owner;
        PG_RE_THROW();
    }
    PG_END_TRY();
    CurrentResourceOwner = owner;
    // A heap partition takes the row as a HeapTuple, formed once; any other table AM gets
    // it in a slot of its own kind.
    const TupleTableSlotOps* ops = table_slot_callbacks(s->partition);
    s->heap_slot = ops == &TTSOpsBufferHeapTuple;
    // A copy of the descriptor: the relcache's is reference-counted per resource owner.
    s->slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(s->partition)),
                                       s->heap_slot ? &TTSOpsHeapTuple : ops);
    MemoryContextSwitchTo(old);
    state = s;
}

InsertState* state_for(const AuditTarget& target)
{
    if (state != nullptr && (state->stale || state->partition_oid != target.partition ||
                             state->parent_oid != target.parent))
        release_state();
    if (state == nullptr)
        build_state(target);
    return state;
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
    AuditTarget target;
    warden_audit_target(ts, &target);
    InsertState* s = state_for(target);

    // Formed once, in the partition's layout, and owned by the slot: the table AM
    // inserts it as it is.
    HeapTuple tuple;
    if (target.map == nullptr) {
        tuple = heap_form_tuple(s->slot->tts_tupleDescriptor, values, nulls);
    } else {
        HeapTuple row = heap_form_tuple(s->parent_desc, values, nulls);
        tuple = execute_attr_map_tuple(row, target.map);
        heap_freetuple(row);
    }
    inserting = true;
    PG_TRY();
    {
        if (s->heap_slot)
            ExecStoreHeapTuple(tuple, s->slot, true);
        else
            ExecForceStoreHeapTuple(tuple, s->slot, true);
        table_tuple_insert(s->partition, s->slot, GetCurrentCommandId(true), 0, nullptr);
        if (s->result != nullptr) {
            ExecInsertIndexTuples(s->result, s->slot, s->estate, false, false, nullptr, NIL);
            ResetPerTupleExprContext(s->estate);
        }
    }
    PG_CATCH();
    {
        // The tuple lives in the failing (sub)transaction's memory: never freed later.
        if (state == s)
            ExecClearTuple(s->slot);
        inserting = false;
        PG_RE_THROW();
    }
    PG_END_TRY();
    ExecClearTuple(s->slot);
    inserting = false;
    if (transaction_ending)
        release_state();
}
