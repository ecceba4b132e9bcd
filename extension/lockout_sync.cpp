// Transactional changes to account locking, applied to shared memory at commit.
//
// The shared counters decide logins, so a change a transaction makes must reach them,
// but only if it commits: a success's reset (warden.login_succeeded), and rows of
// warden.login_attempts and warden.login_source_failures written by anyone but the
// lockout writer (warden.unlock and warden.lock, an administrator's UPDATE, the cleanup's
// DELETE, TRUNCATE, a restore). The trigger below records those; the commit callback
// applies them, and cannot fail.
#include "bridge.h"
#include "lockout_sync.h"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace {

struct PendingOp {
    PendingOp* next;
    SubTransactionId subid;
    LockoutKey key;
    LockoutApply what;
    LockoutState state;
    uint32 columns;
    uint64 seen_version;
};

PendingOp* first;
PendingOp* last;
bool callbacks_registered;

void forget()
{
    first = last = nullptr;  // the memory goes with TopTransactionContext
}

void xact_callback(XactEvent event, void*)
{
    switch (event) {
    case XACT_EVENT_PRE_PREPARE:
        if (first != nullptr)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("cannot PREPARE a transaction that changed account locking")));
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT: {
        TimestampTz now = GetCurrentTimestamp();
        for (PendingOp* op = first; op != nullptr; op = op->next)
            lockout_apply(&op->key, op->what, &op->state, op->columns, op->seen_version, now);
        forget();
        break;
    }
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
        forget();
        break;
    default:
        break;
    }
}

void subxact_callback(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void*)
{
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (PendingOp* op = first; op != nullptr; op = op->next)
            if (op->subid == sub)
                op->subid = parent;
    } else if (event == SUBXACT_EVENT_ABORT_SUB) {
        PendingOp* kept = nullptr;
        PendingOp* kept_last = nullptr;
        for (PendingOp* op = first; op != nullptr; op = op->next) {
            if (op->subid == sub)
                continue;
            if (kept_last == nullptr)
                kept = op;
            else
                kept_last->next = op;
            kept_last = op;
        }
        if (kept_last != nullptr)
            kept_last->next = nullptr;
        first = kept;
        last = kept_last;
    }
}

AttrNumber attnum(TupleDesc desc, const char* name)
{
    int n = SPI_fnumber(desc, name);
    if (n <= 0)
        elog(ERROR, "pg_warden: a lockout table has no column %s", name);
    return (AttrNumber) n;
}

// The key and state of one row of login_attempts or login_source_failures.
void row_state(HeapTuple tuple, TupleDesc desc, bool sources, Oid relid, LockoutKey* key,
               LockoutState* state)
{
    bool isnull;
    memset(state, 0, sizeof *state);
    if (sources) {
        Datum source = heap_getattr(tuple, attnum(desc, "source"), desc, &isnull);
        char* text = DatumGetCString(DirectFunctionCall1(inet_out, source));
        lockout_make_key(key, relid, LOCKOUT_SOURCE, text, (int) strlen(text));
        state->failures = DatumGetInt32(heap_getattr(tuple, attnum(desc, "failures"), desc, &isnull));
        state->window_start = DatumGetTimestampTz(heap_getattr(tuple, attnum(desc, "window_start"), desc, &isnull));
        state->has_window = !isnull;
        return;
    }
    text* principal = DatumGetTextPP(heap_getattr(tuple, attnum(desc, "principal"), desc, &isnull));
    bool known = DatumGetBool(heap_getattr(tuple, attnum(desc, "known_source"), desc, &isnull));
    lockout_make_key(key, relid, known ? LOCKOUT_KNOWN_SOURCE : LOCKOUT_OTHER_SOURCES,
                     VARDATA_ANY(principal), VARSIZE_ANY_EXHDR(principal));
    state->failures = DatumGetInt32(heap_getattr(tuple, attnum(desc, "failures"), desc, &isnull));
    state->lockouts = DatumGetInt32(heap_getattr(tuple, attnum(desc, "lockouts"), desc, &isnull));
    state->window_start = DatumGetTimestampTz(heap_getattr(tuple, attnum(desc, "window_start"), desc, &isnull));
    state->has_window = !isnull;
    state->last_failure_at = DatumGetTimestampTz(heap_getattr(tuple, attnum(desc, "last_failure_at"), desc, &isnull));
    state->has_last_failure = !isnull;
    state->locked_until = DatumGetTimestampTz(heap_getattr(tuple, attnum(desc, "locked_until"), desc, &isnull));
    state->has_until = !isnull;
}

uint32 changed_columns(const LockoutState& a, const LockoutState& b)
{
    uint32 columns = 0;
    if (a.failures != b.failures)
        columns |= LOCKOUT_COL_FAILURES;
    if (a.lockouts != b.lockouts)
        columns |= LOCKOUT_COL_LOCKOUTS;
    if (a.has_window != b.has_window || a.window_start != b.window_start)
        columns |= LOCKOUT_COL_WINDOW;
    if (a.has_last_failure != b.has_last_failure || a.last_failure_at != b.last_failure_at)
        columns |= LOCKOUT_COL_LAST_FAILURE;
    if (a.has_until != b.has_until || a.locked_until != b.locked_until)
        columns |= LOCKOUT_COL_UNTIL;
    return columns;
}

constexpr uint32 ALL_COLUMNS = LOCKOUT_COL_FAILURES | LOCKOUT_COL_LOCKOUTS | LOCKOUT_COL_WINDOW |
                               LOCKOUT_COL_LAST_FAILURE | LOCKOUT_COL_UNTIL;

}  // namespace

void lockout_defer(const LockoutKey* key, LockoutApply what, const LockoutState* state,
                   uint32 columns, uint64 seen_version)
{
    if (!callbacks_registered) {
        RegisterXactCallback(xact_callback, nullptr);
        RegisterSubXactCallback(subxact_callback, nullptr);
        callbacks_registered = true;
    }
    auto* op = static_cast<PendingOp*>(MemoryContextAllocZero(TopTransactionContext, sizeof(PendingOp)));
    op->subid = GetCurrentSubTransactionId();
    op->key = *key;
    op->what = what;
    if (state != nullptr)
        op->state = *state;
    op->columns = columns;
    op->seen_version = seen_version;
    if (last == nullptr)
        first = op;
    else
        last->next = op;
    last = op;
}

// AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW, and AFTER TRUNCATE, on
// warden.login_attempts and warden.login_source_failures.
WARDEN_FUNCTION(warden_lockout_row_changed)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._lockout_row_changed() must be called as a trigger")));
    auto* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (lockout_am_writer || !lockout_shared_ready())
        return PointerGetDatum(nullptr);
    Relation rel = trigger->tg_relation;
    bool sources = strcmp(RelationGetRelationName(rel), "login_source_failures") == 0;
    Oid relid = get_relname_relid("login_attempts", RelationGetNamespace(rel));
    TupleDesc desc = RelationGetDescr(rel);
    TriggerEvent event = trigger->tg_event;
    LockoutKey key;
    LockoutState state;

    if (TRIGGER_FIRED_BY_TRUNCATE(event)) {
        lockout_make_key(&key, relid, sources ? LOCKOUT_SOURCE : LOCKOUT_OTHER_SOURCES, "", 0);
        lockout_defer(&key, LockoutApply::drop_kind, nullptr, 0);
    } else if (TRIGGER_FIRED_BY_INSERT(event)) {
        row_state(trigger->tg_trigtuple, desc, sources, relid, &key, &state);
        lockout_defer(&key, LockoutApply::set_columns, &state, ALL_COLUMNS);
    } else if (TRIGGER_FIRED_BY_DELETE(event)) {
        row_state(trigger->tg_trigtuple, desc, sources, relid, &key, &state);
        lockout_defer(&key, LockoutApply::remove_clean, nullptr, 0);
    } else if (TRIGGER_FIRED_BY_UPDATE(event)) {
        LockoutKey new_key;
        LockoutState old_state;
        row_state(trigger->tg_trigtuple, desc, sources, relid, &key, &old_state);
        row_state(trigger->tg_newtuple, desc, sources, relid, &new_key, &state);
        if (memcmp(&key, &new_key, sizeof key) != 0) {
            lockout_defer(&key, LockoutApply::remove_clean, nullptr, 0);
            lockout_defer(&new_key, LockoutApply::set_columns, &state, ALL_COLUMNS);
        } else {
            uint32 columns = changed_columns(old_state, state);
            if (columns != 0)
                lockout_defer(&key, LockoutApply::set_columns, &state, columns);
        }
    }
    return PointerGetDatum(nullptr);
}

// warden.lockout_flush(): waits until every failure, lock and event recorded in this
// database before the call has been committed by its writer.
WARDEN_FUNCTION(warden_lockout_flush)
{
    if (!lockout_shared_ready())
        PG_RETURN_BOOL(true);
    PG_RETURN_BOOL(lockout_wait_flushed(30000));
}
