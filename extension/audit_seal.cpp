// Seals over the audit trail (sql/1.2/45_audit_seals.sql, docs/audit.md): the hash of a
// slice's rows, the bucket of a row among the seals, and the guard of the seals tables.
//
// A slice's hash does not depend on the order its rows are read in: each row becomes a
// canonical byte string, is hashed with SHA-256, and the slice's hash is the SHA-256 of
// the sorted row hashes. The canonical string depends on the values only, never on the
// session (DateStyle, TimeZone, bytea_output, extra_float_digits): fixed-length values
// are taken as stored (timestamps as their 64-bit microseconds), text and bytea as their
// bytes, jsonb and other variable-length types as their type's text output, which for
// the types sealed here (jsonb, numeric, inet, text[]) reads no setting.
//
// Writers never see any of this: the worker's job computes the hashes after the fact.
#include <openssl/evp.h>

#include "audit.h"
#include "bridge.h"

extern "C" {
#include "access/htup_details.h"
#include "access/tupmacs.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
}

namespace {

bool seal_mode = false;

void end_seal_mode(XactEvent, void*)
{
    seal_mode = false;
}

void end_seal_mode_on_abort(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        seal_mode = false;
}

// How one column of the sealed row becomes bytes.
enum class Encoding : char { Fixed, Bytes, Json, Output };

struct SealState {
    Oid tupdesc_type;
    int32 tupdesc_typmod;
    int natts;
    Encoding* encoding;
    FmgrInfo* output;
    int16* attlen;
    bool* attbyval;
    uint8* digests;  // PG_SHA256_DIGEST_LENGTH bytes per row
    int64 nrows;
    int64 capacity;
};

// SHA-256 through one OpenSSL context kept for the backend, its algorithm fetched once:
// a context (and an implicit fetch) per row would cost more than the row's bytes.
EVP_MD* sha256_md = nullptr;
EVP_MD_CTX* sha256_ctx = nullptr;

void sha256(const uint8* data, size_t len, uint8* out)
{
    if (sha256_ctx == nullptr) {
        if (sha256_md == nullptr)
            sha256_md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        if (sha256_md != nullptr)
            sha256_ctx = EVP_MD_CTX_new();
    }
    unsigned int n = 0;
    if (sha256_ctx == nullptr || EVP_DigestInit_ex2(sha256_ctx, sha256_md, nullptr) != 1 ||
        EVP_DigestUpdate(sha256_ctx, data, len) != 1 || EVP_DigestFinal_ex(sha256_ctx, out, &n) != 1 ||
        n != PG_SHA256_DIGEST_LENGTH)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not compute a SHA-256 hash")));
}

// The row being encoded: one buffer for the backend, not one per group.
StringInfo row_buffer()
{
    static StringInfo buf = nullptr;
    if (buf == nullptr) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        buf = makeStringInfo();
        MemoryContextSwitchTo(old);
    }
    return buf;
}

void describe_row(SealState* state, HeapTupleHeader row, MemoryContext context)
{
    Oid type = HeapTupleHeaderGetTypeId(row);
    int32 typmod = HeapTupleHeaderGetTypMod(row);
    if (state->encoding != nullptr && state->tupdesc_type == type && state->tupdesc_typmod == typmod)
        return;
    TupleDesc desc = lookup_rowtype_tupdesc(type, typmod);
    MemoryContext old = MemoryContextSwitchTo(context);
    state->tupdesc_type = type;
    state->tupdesc_typmod = typmod;
    state->natts = desc->natts;
    state->encoding = (Encoding*) palloc0(sizeof(Encoding) * Max(desc->natts, 1));
    state->output = (FmgrInfo*) palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
    state->attlen = (int16*) palloc0(sizeof(int16) * Max(desc->natts, 1));
    state->attbyval = (bool*) palloc0(sizeof(bool) * Max(desc->natts, 1));
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        state->attlen[i] = attr->attlen;
        state->attbyval[i] = attr->attbyval;
        Oid base = getBaseType(attr->atttypid);
        if (attr->attlen > 0)
            state->encoding[i] = Encoding::Fixed;
        else if (base == TEXTOID || base == VARCHAROID || base == BPCHAROID || base == BYTEAOID)
            state->encoding[i] = Encoding::Bytes;
        else if (base == JSONBOID)
            state->encoding[i] = Encoding::Json;
        else {
            Oid output;
            bool varlena;
            getTypeOutputInfo(attr->atttypid, &output, &varlena);
            fmgr_info_cxt(output, &state->output[i], context);
            state->encoding[i] = Encoding::Output;
        }
    }
    MemoryContextSwitchTo(old);
    ReleaseTupleDesc(desc);
}

void append_length(StringInfo buf, uint32 len)
{
    appendBinaryStringInfo(buf, (const char*) &len, sizeof len);
}

// The row's canonical bytes: per column a null flag, then its value.
void encode_row(SealState* state, HeapTupleHeader row)
{
    TupleDesc desc = lookup_rowtype_tupdesc(state->tupdesc_type, state->tupdesc_typmod);
    HeapTupleData tuple;
    tuple.t_len = HeapTupleHeaderGetDatumLength(row);
    ItemPointerSetInvalid(&tuple.t_self);
    tuple.t_tableOid = InvalidOid;
    tuple.t_data = row;
    Datum* values = (Datum*) palloc(sizeof(Datum) * Max(state->natts, 1));
    bool* nulls = (bool*) palloc(sizeof(bool) * Max(state->natts, 1));
    heap_deform_tuple(&tuple, desc, values, nulls);
    ReleaseTupleDesc(desc);

    StringInfo buf = row_buffer();
    resetStringInfo(buf);
    for (int i = 0; i < state->natts; i++) {
        appendStringInfoChar(buf, nulls[i] ? 'n' : 'v');
        if (nulls[i])
            continue;
        switch (state->encoding[i]) {
        case Encoding::Fixed:
            if (state->attbyval[i]) {
                char bytes[sizeof(Datum)];
                store_att_byval(bytes, values[i], state->attlen[i]);
                appendBinaryStringInfo(buf, bytes, state->attlen[i]);
            } else {
                appendBinaryStringInfo(buf, DatumGetPointer(values[i]), state->attlen[i]);
            }
            break;
        case Encoding::Bytes: {
            struct varlena* v = pg_detoast_datum_packed((struct varlena*) DatumGetPointer(values[i]));
            append_length(buf, VARSIZE_ANY_EXHDR(v));
            appendBinaryStringInfo(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
            break;
        }
        case Encoding::Json: {
            Jsonb* j = DatumGetJsonbP(values[i]);
            char* text = JsonbToCString(nullptr, &j->root, VARSIZE(j));
            append_length(buf, strlen(text));
            appendBinaryStringInfoNT(buf, text, strlen(text));
            break;
        }
        case Encoding::Output: {
            char* text = OutputFunctionCall(&state->output[i], values[i]);
            append_length(buf, strlen(text));
            appendBinaryStringInfoNT(buf, text, strlen(text));
            break;
        }
        }
    }
    pfree(values);
    pfree(nulls);
}

int compare_digests(const void* a, const void* b)
{
    return memcmp(a, b, PG_SHA256_DIGEST_LENGTH);
}

}  // namespace

void warden_audit_seal_init(void)
{
    RegisterXactCallback(end_seal_mode, nullptr);
    RegisterSubXactCallback(end_seal_mode_on_abort, nullptr);
}

// warden._seal_accum(internal, record): the aggregate's transition.
WARDEN_FUNCTION(warden_seal_accum)
{
    MemoryContext aggcontext;
    if (!AggCheckCallContext(fcinfo, &aggcontext))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("warden._seal_accum() must be called as an aggregate")));
    SealState* state = PG_ARGISNULL(0) ? nullptr : (SealState*) PG_GETARG_POINTER(0);
    if (state == nullptr) {
        state = (SealState*) MemoryContextAllocZero(aggcontext, sizeof(SealState));
        state->capacity = 8;
        state->digests = (uint8*) MemoryContextAlloc(aggcontext, state->capacity * PG_SHA256_DIGEST_LENGTH);
    }
    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a sealed row must not be NULL")));
    HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(1);
    describe_row(state, row, aggcontext);
    encode_row(state, row);
    if (state->nrows == state->capacity) {
        state->capacity *= 2;
        state->digests = (uint8*) repalloc_huge(state->digests, state->capacity * PG_SHA256_DIGEST_LENGTH);
    }
    StringInfo buf = row_buffer();
    sha256((const uint8*) buf->data, buf->len, state->digests + state->nrows * PG_SHA256_DIGEST_LENGTH);
    state->nrows++;
    PG_RETURN_POINTER(state);
}

// warden._seal_final(internal): SHA-256 over the sorted row hashes; NULL without rows.
WARDEN_FUNCTION(warden_seal_final)
{
    if (PG_ARGISNULL(0))
        PG_RETURN_NULL();
    SealState* state = (SealState*) PG_GETARG_POINTER(0);
    qsort(state->digests, state->nrows, PG_SHA256_DIGEST_LENGTH, compare_digests);
    bytea* result = (bytea*) palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
    SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
    sha256(state->digests, (size_t) state->nrows * PG_SHA256_DIGEST_LENGTH, (uint8*) VARDATA(result));
    PG_RETURN_BYTEA_P(result);
}

namespace {

struct BucketCache {
    Datum array;
    int32 size;
    int n;
    TimestampTz* starts;
};

}  // namespace

// warden._seal_bucket(ts, starts): the 1-based index of the last start <= ts in the
// ascending array starts, 0 before the first. The array is decoded once per query.
WARDEN_FUNCTION(warden_seal_bucket)
{
    TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
    Datum array_datum = PG_GETARG_DATUM(1);
    BucketCache* cache = (BucketCache*) fcinfo->flinfo->fn_extra;
    int32 size = VARSIZE_ANY(DatumGetPointer(array_datum));
    if (cache == nullptr || cache->array != array_datum || cache->size != size) {
        MemoryContext context = fcinfo->flinfo->fn_mcxt;
        if (cache == nullptr)
            cache = (BucketCache*) MemoryContextAllocZero(context, sizeof(BucketCache));
        ArrayType* array = DatumGetArrayTypeP(array_datum);
        Datum* elems;
        bool* elem_nulls;
        int n;
        deconstruct_array(array, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
                          &elems, &elem_nulls, &n);
        cache->starts = (TimestampTz*) MemoryContextAlloc(context, sizeof(TimestampTz) * Max(n, 1));
        for (int i = 0; i < n; i++) {
            if (elem_nulls[i])
                ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("seal starts must not be NULL")));
            cache->starts[i] = DatumGetTimestampTz(elems[i]);
        }
        cache->n = n;
        cache->array = array_datum;
        cache->size = size;
        fcinfo->flinfo->fn_extra = cache;
    }
    int lo = 0, hi = cache->n;  // first index whose start > ts
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cache->starts[mid] <= ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    PG_RETURN_INT32(lo);
}

WARDEN_FUNCTION(warden_audit_seal_mode)
{
    seal_mode = PG_GETARG_BOOL(0);
    PG_RETURN_VOID();
}

// The seals and the record of removals: appended to by the sealing and retention
// routines only (seal mode), or by a superuser (pg_restore); changed or emptied by no
// role but a superuser. The outer role decides, as for warden.security_events.
WARDEN_FUNCTION(warden_audit_seals_guard)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._audit_seals_guard() must be called as a trigger")));
    TriggerData* trigger = (TriggerData*) fcinfo->context;
    TriggerEvent event = trigger->tg_event;
    bool insert = TRIGGER_FIRED_BY_INSERT(event);
    if (!(insert && seal_mode) && !superuser_arg(GetOuterUserId()))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("warden.%s is append-only", RelationGetRelationName(trigger->tg_relation)),
                        errdetail("Only the sealing and retention routines add rows; no role but a "
                                  "superuser changes or removes them."),
                        errhint("Seals are written by warden.seal_audit().")));
    if (!TRIGGER_FIRED_FOR_ROW(event))
        return PointerGetDatum(nullptr);
    return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(event) ? trigger->tg_newtuple : trigger->tg_trigtuple);
}
