// warden.audit_trigger(): the audit row trigger (and the statement-level TRUNCATE
// trigger). Per row it builds the primary key and the old/new values as JSONB, skips an
// UPDATE that changed nothing, and inserts one row straight into the partition of
// warden.audit_log that covers the current time.
//
// An excluded column's value is never stored. If it is part of the primary key (enable_audit
// allows that, and ALTER TABLE may make it so later), record_key holds a keyed hash of it
// (audit_key_hash.cpp). What the trigger knows of the key is rebuilt whenever the relcache
// invalidates the table, so the value cannot slip into the log after an ALTER TABLE.
//
// The trigger runs as the writer and resolves nothing by name through the writer's
// search_path: functions are called by OID (to_jsonb, the types' output functions) and
// the log is found as warden.audit_log.
//
// What it needs about a table (primary-key columns, excluded columns, how to turn each
// column into JSON) is computed once per trigger and cached until the relcache
// invalidates the table (ALTER TABLE, a new trigger definition, ...), so rows cost no
// catalog lookups. Role names (as text), the client address and the audit_log OID are
// cached too; the row is inserted by audit_insert.cpp, with per-transaction state.
#include "audit.h"
#include "bridge.h"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupconvert.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"
}

namespace {

// How a column's value becomes JSON: common types directly (as to_jsonb() would make
// them), the rest through to_jsonb().
enum class ValueKind : char { Int2, Int4, Int8, Bool, Text, Jsonb, Numeric, Date, Timestamp, TimestampTz, Other };

struct ColumnInfo {
    ValueKind kind;
    bool excluded;
    bool dropped;
    Oid type;
    FmgrInfo to_jsonb;  // set up for ValueKind::Other and Numeric (NaN, infinities) only
    FmgrInfo output;    // the type's output function, for excluded key columns only
};

struct TriggerInfo {
    Oid tgoid;  // hash key: the trigger's arguments are part of what is cached
    Oid relid;
    bool valid;
    MemoryContext context;
    Datum schema_name;  // text
    Datum table_name;   // text
    bool full_row;
    int npk;
    AttrNumber* pk;
    int natts;
    ColumnInfo* columns;
    // The columns in the order of JSONB object keys (shorter names first, then bytewise),
    // so that a whole row's object needs no sorting; dropped columns left out.
    int nordered;
    int* ordered;
};

// A role's name as text, in TopMemoryContext.
struct RoleName {
    Oid oid;
    Datum name;
};


HTAB* trigger_cache = nullptr;
char* audit_actor = nullptr;  // warden.actor
RoleName session_role = {InvalidOid, (Datum) 0};
RoleName current_role = {InvalidOid, (Datum) 0};
// The texts of warden.actor and application_name as of the last row, in TopMemoryContext.
Datum actor_text = (Datum) 0;
Datum application_text = (Datum) 0;
bool client_addr_known = false;
bool client_addr_null = true;
Datum client_addr = (Datum) 0;
// The op column's values, in TopMemoryContext.
Datum op_text[4] = {};
const char* const op_names[4] = {"INSERT", "UPDATE", "DELETE", "TRUNCATE"};

void invalidate_triggers(Datum, Oid relid)
{
    if (trigger_cache == nullptr)
        return;
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, trigger_cache);
    TriggerInfo* info;
    while ((info = (TriggerInfo*) hash_seq_search(&scan)) != nullptr)
        if (relid == InvalidOid || info->relid == relid)
            info->valid = false;
}

void forget_role_names(Datum, int, uint32)
{
    session_role.oid = InvalidOid;
    current_role.oid = InvalidOid;
}

ValueKind kind_of(Oid type)
{
    switch (type) {
    case INT2OID: return ValueKind::Int2;
    case INT4OID: return ValueKind::Int4;
    case INT8OID: return ValueKind::Int8;
    case BOOLOID: return ValueKind::Bool;
    case TEXTOID:
    case VARCHAROID: return ValueKind::Text;
    case JSONBOID: return ValueKind::Jsonb;
    case NUMERICOID: return ValueKind::Numeric;
    case DATEOID: return ValueKind::Date;
    case TIMESTAMPOID: return ValueKind::Timestamp;
    case TIMESTAMPTZOID: return ValueKind::TimestampTz;
    default: return ValueKind::Other;
    }
}

// to_jsonb(anyelement) learns its argument's type from the call expression, so each
// column gets an FmgrInfo whose expression says the column's type.
void prepare_to_jsonb(ColumnInfo* column, Oid type, MemoryContext context)
{
    fmgr_info_cxt(F_TO_JSONB, &column->to_jsonb, context);
    MemoryContext old = MemoryContextSwitchTo(context);
    column->to_jsonb.fn_expr =
        (Node*) makeFuncExpr(F_TO_JSONB, JSONBOID, list_make1(makeNullConst(type, -1, InvalidOid)),
                             InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
    MemoryContextSwitchTo(old);
}

// The order of JSONB object keys (jsonb's lengthCompareJsonbStringValue).
int compare_json_keys(const void* a, const void* b, void* arg)
{
    TupleDesc desc = (TupleDesc) arg;
    const char* x = NameStr(TupleDescAttr(desc, *(const int*) a)->attname);
    const char* y = NameStr(TupleDescAttr(desc, *(const int*) b)->attname);
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return memcmp(x, y, lx);
}

void build_trigger_info(TriggerInfo* info, TriggerData* trigdata)
{
    Relation rel = trigdata->tg_relation;
    Trigger* trigger = trigdata->tg_trigger;
    MemoryContext context =
        AllocSetContextCreate(CacheMemoryContext, "pg_warden audit trigger", ALLOCSET_SMALL_SIZES);
    info->context = context;
    info->relid = RelationGetRelid(rel);

    if (trigger->tgnargs < 1 ||
        (strcmp(trigger->tgargs[0], "full") != 0 && strcmp(trigger->tgargs[0], "diff") != 0))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("audit trigger \"%s\" on \"%s\" has invalid arguments",
                               trigger->tgname, RelationGetRelationName(rel)),
                        errhint("Create audit triggers with warden.enable_audit().")));
    info->full_row = strcmp(trigger->tgargs[0], "full") == 0;

    char* schema = get_namespace_name(RelationGetNamespace(rel));
    MemoryContext old = MemoryContextSwitchTo(context);
    info->schema_name = CStringGetTextDatum(schema ? schema : "");
    info->table_name = CStringGetTextDatum(RelationGetRelationName(rel));
    MemoryContextSwitchTo(old);

    TupleDesc desc = RelationGetDescr(rel);
    info->natts = desc->natts;
    info->columns = (ColumnInfo*) MemoryContextAllocZero(context, sizeof(ColumnInfo) * Max(desc->natts, 1));
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        ColumnInfo* column = &info->columns[i];
        column->dropped = attr->attisdropped;
        column->kind = kind_of(attr->atttypid);
        column->type = attr->atttypid;
        if ((column->kind == ValueKind::Other || column->kind == ValueKind::Numeric) && !column->dropped)
            prepare_to_jsonb(column, attr->atttypid, context);
    }
    info->ordered = (int*) MemoryContextAlloc(context, sizeof(int) * Max(desc->natts, 1));
    info->nordered = 0;
    for (int i = 0; i < desc->natts; i++)
        if (!info->columns[i].dropped)
            info->ordered[info->nordered++] = i;
    qsort_arg(info->ordered, info->nordered, sizeof(int), compare_json_keys, desc);

    for (int a = 1; a < trigger->tgnargs; a++) {
        const char* name = trigger->tgargs[a];
        int found = -1;
        for (int i = 0; i < desc->natts && found < 0; i++)
            if (!TupleDescAttr(desc, i)->attisdropped && strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
                found = i;
        if (found < 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("audit trigger on \"%s\" excludes column \"%s\", which no longer exists",
                                   RelationGetRelationName(rel), name),
                            errdetail("Writes are refused rather than risk storing a renamed excluded column."),
                            errhint("Call warden.enable_audit() again with the current column names.")));
        info->columns[found].excluded = true;
    }

    info->npk = 0;
    Oid pk_index = RelationGetPrimaryKeyIndex(rel);
    if (OidIsValid(pk_index)) {
        Relation index = index_open(pk_index, AccessShareLock);
        int n = index->rd_index->indnkeyatts;
        info->pk = (AttrNumber*) MemoryContextAlloc(context, sizeof(AttrNumber) * n);
        for (int k = 0; k < n; k++)
            info->pk[k] = index->rd_index->indkey.values[k];
        info->npk = n;
        index_close(index, AccessShareLock);
    }
    for (int k = 0; k < info->npk; k++) {
        int i = info->pk[k] - 1;
        if (i < 0 || !info->columns[i].excluded)
            continue;
        Oid output;
        bool varlena;
        getTypeOutputInfo(TupleDescAttr(desc, i)->atttypid, &output, &varlena);
        fmgr_info_cxt(output, &info->columns[i].output, context);
    }
}

TriggerInfo* trigger_info(TriggerData* trigdata)
{
    if (trigger_cache == nullptr) {
        HASHCTL ctl;
        ctl.keysize = sizeof(Oid);
        ctl.entrysize = sizeof(TriggerInfo);
        trigger_cache = hash_create("pg_warden audit triggers", 64, &ctl, HASH_ELEM | HASH_BLOBS);
    }
    bool found;
    TriggerInfo* info =
        (TriggerInfo*) hash_search(trigger_cache, &trigdata->tg_trigger->tgoid, HASH_ENTER, &found);
    if (found && info->valid && info->natts == RelationGetDescr(trigdata->tg_relation)->natts)
        return info;
    if (found && info->context != nullptr)
        MemoryContextDelete(info->context);
    info->context = nullptr;
    info->valid = false;
    build_trigger_info(info, trigdata);
    info->valid = true;
    return info;
}

void push_value(JsonbParseState** state, const ColumnInfo* column, Datum value, bool isnull)
{
    JsonbValue v;
    if (isnull) {
        v.type = jbvNull;
        pushJsonbValue(state, WJB_VALUE, &v);
        return;
    }
    switch (column->kind) {
    case ValueKind::Int2:
    case ValueKind::Int4:
    case ValueKind::Int8: {
        int64 n = column->kind == ValueKind::Int2   ? DatumGetInt16(value)
                  : column->kind == ValueKind::Int4 ? DatumGetInt32(value)
                                                    : DatumGetInt64(value);
        v.type = jbvNumeric;
        v.val.numeric = int64_to_numeric(n);
        break;
    }
    case ValueKind::Bool:
        v.type = jbvBool;
        v.val.boolean = DatumGetBool(value);
        break;
    case ValueKind::Text: {
        text* t = DatumGetTextPP(value);
        v.type = jbvString;
        v.val.string.val = VARDATA_ANY(t);
        v.val.string.len = VARSIZE_ANY_EXHDR(t);
        break;
    }
    case ValueKind::Date:
    case ValueKind::Timestamp:
    case ValueKind::TimestampTz:
        v.type = jbvString;
        v.val.string.val = JsonEncodeDateTime(nullptr, value, column->type, nullptr);
        v.val.string.len = strlen(v.val.string.val);
        break;
    case ValueKind::Numeric: {
        Numeric n = DatumGetNumeric(value);
        // to_jsonb() makes NaN and the infinities strings.
        if (!numeric_is_nan(n) && !numeric_is_inf(n)) {
            v.type = jbvNumeric;
            v.val.numeric = n;
            break;
        }
    }
        [[fallthrough]];
    case ValueKind::Jsonb:
    case ValueKind::Other: {
        Jsonb* j = column->kind == ValueKind::Jsonb
                       ? DatumGetJsonbP(value)
                       : DatumGetJsonbP(FunctionCall1(const_cast<FmgrInfo*>(&column->to_jsonb), value));
        v.type = jbvBinary;
        v.val.binary.data = &j->root;
        v.val.binary.len = VARSIZE(j) - VARHDRSZ;
        break;
    }
    }
    pushJsonbValue(state, WJB_VALUE, &v);
}

void push_key(JsonbParseState** state, TupleDesc desc, int i)
{
    JsonbValue key;
    key.type = jbvString;
    key.val.string.val = NameStr(TupleDescAttr(desc, i)->attname);
    key.val.string.len = strlen(key.val.string.val);
    pushJsonbValue(state, WJB_KEY, &key);
}

// The row's columns as a JSONB object: every column that is not excluded, or, when only
// is given, those marked in it.
Datum row_json(const TriggerInfo* info, TupleDesc desc, TupleTableSlot* slot, const bool* only)
{
    JsonbParseState* state = nullptr;
    pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
    for (int k = 0; k < info->nordered; k++) {
        int i = info->ordered[k];
        const ColumnInfo* column = &info->columns[i];
        if (column->excluded || (only != nullptr && !only[i]))
            continue;
        push_key(&state, desc, i);
        push_value(&state, column, slot->tts_values[i], slot->tts_isnull[i]);
    }
    return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, nullptr)));
}

// An excluded key column as its keyed hash (key columns are never NULL).
void push_hashed(JsonbParseState** state, const ColumnInfo* column, TupleDesc desc, int i, Datum value)
{
    char* text = OutputFunctionCall(const_cast<FmgrInfo*>(&column->output), value);
    JsonbValue v;
    v.type = jbvString;
    v.val.string.val = warden_audit_key_hash(NameStr(TupleDescAttr(desc, i)->attname), text);
    v.val.string.len = strlen(v.val.string.val);
    pushJsonbValue(state, WJB_VALUE, &v);
}

Datum key_json(const TriggerInfo* info, TupleDesc desc, TupleTableSlot* slot)
{
    JsonbParseState* state = nullptr;
    pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
    for (int k = 0; k < info->npk; k++) {
        int i = info->pk[k] - 1;
        push_key(&state, desc, i);
        if (info->columns[i].excluded && !slot->tts_isnull[i])
            push_hashed(&state, &info->columns[i], desc, i, slot->tts_values[i]);
        else
            push_value(&state, &info->columns[i], slot->tts_values[i], slot->tts_isnull[i]);
    }
    return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, nullptr)));
}

Datum role_name(RoleName* memo, Oid role)
{
    if (memo->oid != role) {
        char buf[NAMEDATALEN];
        char* name = GetUserNameFromId(role, true);
        if (name != nullptr)
            strlcpy(buf, name, NAMEDATALEN);
        else
            snprintf(buf, NAMEDATALEN, "role %u", role);
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        Datum text = CStringGetTextDatum(buf);
        MemoryContextSwitchTo(old);
        if (memo->name != (Datum) 0)
            pfree(DatumGetPointer(memo->name));
        memo->name = text;
        memo->oid = role;
    }
    return memo->name;
}

// value as text in TopMemoryContext, the same Datum as long as the value stays the same.
Datum setting_text(Datum* memo, const char* value)
{
    size_t len = strlen(value);
    if (*memo != (Datum) 0) {
        text* t = DatumGetTextPP(*memo);
        if (VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), value, len) == 0)
            return *memo;
        *memo = (Datum) 0;
        pfree(t);
    }
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    *memo = CStringGetTextDatum(value);
    MemoryContextSwitchTo(old);
    return *memo;
}

Datum op_name(int op)
{
    if (op_text[op] == (Datum) 0) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        op_text[op] = CStringGetTextDatum(op_names[op]);
        MemoryContextSwitchTo(old);
    }
    return op_text[op];
}

void load_client_addr()
{
    LOCAL_FCINFO(call, 0);
    InitFunctionCallInfoData(*call, nullptr, 0, InvalidOid, nullptr, nullptr);
    Datum addr = inet_client_addr(call);
    if (!call->isnull) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        client_addr = datumCopy(addr, false, -1);
        MemoryContextSwitchTo(old);
        client_addr_null = false;
    }
    client_addr_known = true;
}

enum { OpInsert, OpUpdate, OpDelete, OpTruncate };

struct Event {
    int op;
    Datum record_key, old_values, new_values, excluded_changed;
    bool key_null, old_null, new_null, excluded_null;
};

void write_event(const TriggerInfo* info, const Event& event)
{
    if (!client_addr_known)
        load_client_addr();

    TimestampTz now = GetCurrentTimestamp();
    Datum values[WARDEN_AUDIT_LOG_NATTS];
    bool nulls[WARDEN_AUDIT_LOG_NATTS] = {};
    values[0] = TimestampTzGetDatum(now);
    values[1] = op_name(event.op);
    values[2] = ObjectIdGetDatum(info->relid);
    values[3] = info->schema_name;
    values[4] = info->table_name;
    values[5] = event.record_key, nulls[5] = event.key_null;
    values[6] = event.old_values, nulls[6] = event.old_null;
    values[7] = event.new_values, nulls[7] = event.new_null;
    values[8] = event.excluded_changed, nulls[8] = event.excluded_null;
    values[9] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
    values[10] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    values[11] = FullTransactionIdGetDatum(GetTopFullTransactionId());
    values[12] = role_name(&session_role, GetSessionUserId());
    values[13] = role_name(&current_role, GetUserId());
    nulls[14] = audit_actor == nullptr || audit_actor[0] == '\0';
    values[14] = nulls[14] ? (Datum) 0 : setting_text(&actor_text, audit_actor);
    nulls[15] = application_name == nullptr || application_name[0] == '\0';
    values[15] = nulls[15] ? (Datum) 0 : setting_text(&application_text, application_name);
    values[16] = client_addr, nulls[16] = client_addr_null;
    warden_audit_insert(now, values, nulls);
}

Datum excluded_names(const TriggerInfo* info, TupleDesc desc, const bool* excluded_changed, int count)
{
    Datum* names = (Datum*) palloc(sizeof(Datum) * count);
    int n = 0;
    for (int i = 0; i < info->natts; i++)
        if (excluded_changed[i])
            names[n++] = CStringGetTextDatum(NameStr(TupleDescAttr(desc, i)->attname));
    return PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

// Fills event for an UPDATE; returns false when no column changed.
bool diff_update(const TriggerInfo* info, TupleDesc desc, TupleTableSlot* old_slot,
                 TupleTableSlot* new_slot, Event* event)
{
    bool* changed = (bool*) palloc0(sizeof(bool) * Max(info->natts, 1));
    bool* excluded_changed = (bool*) palloc0(sizeof(bool) * Max(info->natts, 1));
    int nchanged = 0, nexcluded = 0;
    for (int i = 0; i < info->natts; i++) {
        if (info->columns[i].dropped)
            continue;
        bool old_null = old_slot->tts_isnull[i], new_null = new_slot->tts_isnull[i];
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        bool same = old_null || new_null
                        ? old_null == new_null
                        : datum_image_eq(old_slot->tts_values[i], new_slot->tts_values[i], attr->attbyval,
                                         attr->attlen);
        if (same)
            continue;
        if (info->columns[i].excluded) {
            excluded_changed[i] = true;
            nexcluded++;
        } else {
            changed[i] = true;
            nchanged++;
        }
    }
    if (nchanged == 0 && nexcluded == 0)
        return false;

    // Without a primary key the whole old row is what identifies the row.
    bool whole_old = info->full_row || info->npk == 0;
    event->old_values = row_json(info, desc, old_slot, whole_old ? nullptr : changed);
    event->new_values = row_json(info, desc, new_slot, info->full_row ? nullptr : changed);
    event->old_null = event->new_null = false;
    if (nexcluded > 0) {
        event->excluded_changed = excluded_names(info, desc, excluded_changed, nexcluded);
        event->excluded_null = false;
    }
    return true;
}

}  // namespace

void warden_audit_init(void)
{
    DefineCustomStringVariable(
        "warden.actor", "The application actor recorded in warden.audit_log.",
        "Set per transaction with warden.set_actor(text) or SET LOCAL warden.actor, e.g. to the "
        "user id of the web request being served.",
        &audit_actor, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    CacheRegisterRelcacheCallback(invalidate_triggers, (Datum) 0);
    CacheRegisterSyscacheCallback(AUTHOID, forget_role_names, (Datum) 0);
    warden_audit_route_init();
    warden_audit_insert_init();
    warden_audit_guard_init();
    warden_audit_floor_init();
    warden_audit_seal_init();
}

WARDEN_FUNCTION(warden_audit_trigger)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden.audit_trigger() must be called as a trigger")));
    TriggerData* trigdata = (TriggerData*) fcinfo->context;
    TriggerEvent tg_event = trigdata->tg_event;
    bool for_row = TRIGGER_FIRED_FOR_ROW(tg_event) != 0;
    bool by_truncate = TRIGGER_FIRED_BY_TRUNCATE(tg_event) != 0;
    if (!TRIGGER_FIRED_AFTER(tg_event) || for_row == by_truncate)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden.audit_trigger() must fire AFTER, FOR EACH ROW on INSERT, UPDATE or "
                               "DELETE, FOR EACH STATEMENT on TRUNCATE"),
                        errhint("Create audit triggers with warden.enable_audit().")));

    const TriggerInfo* info = trigger_info(trigdata);
    TupleDesc desc = RelationGetDescr(trigdata->tg_relation);
    Event event = {};
    event.key_null = event.old_null = event.new_null = event.excluded_null = true;

    if (by_truncate) {
        event.op = OpTruncate;
    } else if (TRIGGER_FIRED_BY_INSERT(tg_event)) {
        TupleTableSlot* slot = trigdata->tg_trigslot;
        slot_getallattrs(slot);
        event.op = OpInsert;
        event.new_values = row_json(info, desc, slot, nullptr);
        event.new_null = false;
        if (info->npk > 0)
            event.record_key = key_json(info, desc, slot), event.key_null = false;
    } else if (TRIGGER_FIRED_BY_DELETE(tg_event)) {
        TupleTableSlot* slot = trigdata->tg_trigslot;
        slot_getallattrs(slot);
        event.op = OpDelete;
        event.old_values = row_json(info, desc, slot, nullptr);
        event.old_null = false;
        if (info->npk > 0)
            event.record_key = key_json(info, desc, slot), event.key_null = false;
    } else {
        TupleTableSlot* old_slot = trigdata->tg_trigslot;
        TupleTableSlot* new_slot = trigdata->tg_newslot;
        slot_getallattrs(old_slot);
        slot_getallattrs(new_slot);
        event.op = OpUpdate;
        if (!diff_update(info, desc, old_slot, new_slot, &event))
            return PointerGetDatum(nullptr);
        if (info->npk > 0)
            event.record_key = key_json(info, desc, new_slot), event.key_null = false;
    }
    write_event(info, event);
    return PointerGetDatum(nullptr);
}
