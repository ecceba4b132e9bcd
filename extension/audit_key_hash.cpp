// The keyed hash that stands in for an excluded column in record_key, when the column is
// (or later becomes) part of the primary key. The key is a random secret in
// warden.audit_secret, which no role but its (superuser) owner can read: the hash links
// the events of one row without letting readers of the log test guesses of the value.
//
// The trigger runs as the writer, so the key is read here directly from the heap, below
// the privilege system, and kept per backend until the table is invalidated (a
// statement trigger on it sends the invalidation on any change).
#include "audit.h"
#include "bridge.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace {

constexpr size_t max_key_len = 64;

struct Key {
    bool valid;
    Oid relid;
    size_t len;
    uint8 bytes[max_key_len];
};

Key key;
bool callback_registered = false;

void forget_key(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == key.relid)
        key.valid = false;
}

[[noreturn]] void missing_key(const char* why)
{
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("pg_warden: the audit key in warden.audit_secret %s", why),
                    errdetail("An excluded column is part of the primary key; record_key holds its "
                              "keyed hash, never its value, and there is no key to hash with."),
                    errhint("As a superuser: INSERT INTO warden.audit_secret DEFAULT VALUES.")));
}

void load_key()
{
    if (key.valid)
        return;
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(forget_key, (Datum) 0);
        callback_registered = true;
    }
    Oid relid = RangeVarGetRelidExtended(makeRangeVar(pstrdup("warden"), pstrdup("audit_secret"), -1),
                                         AccessShareLock, RVR_MISSING_OK, nullptr, nullptr);
    if (!OidIsValid(relid))
        missing_key("is missing");
    AttrNumber column = get_attnum(relid, "secret");
    if (column == InvalidAttrNumber)
        missing_key("has no column secret");
    Relation rel = table_open(relid, NoLock);
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, nullptr);
    HeapTuple tuple = systable_getnext(scan);
    bool isnull = true;
    Datum value = HeapTupleIsValid(tuple) ? heap_getattr(tuple, column, RelationGetDescr(rel), &isnull) : (Datum) 0;
    Key loaded = {false, relid, 0, {}};
    if (!isnull) {
        bytea* secret = DatumGetByteaPP(value);
        loaded.len = Min((size_t) VARSIZE_ANY_EXHDR(secret), max_key_len);
        memcpy(loaded.bytes, VARDATA_ANY(secret), loaded.len);
    }
    systable_endscan(scan);
    UnregisterSnapshot(snapshot);
    table_close(rel, AccessShareLock);
    if (loaded.len == 0)
        missing_key("has no row");
    loaded.valid = true;
    key = loaded;
}

}  // namespace

char* warden_audit_key_hash(const char* column, const char* value)
{
    load_key();
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    pg_hmac_ctx* ctx = pg_hmac_create(PG_SHA256);
    // The column name goes in first, so equal values of two columns hash differently.
    bool ok = ctx != nullptr && pg_hmac_init(ctx, key.bytes, key.len) == 0 &&
              pg_hmac_update(ctx, (const uint8*) column, strlen(column) + 1) == 0 &&
              pg_hmac_update(ctx, (const uint8*) value, strlen(value)) == 0 &&
              pg_hmac_final(ctx, digest, sizeof digest) == 0;
    pg_hmac_free(ctx);
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("pg_warden: computing an HMAC failed")));
    static const char prefix[] = "hmac-sha256:";
    char* out = (char*) palloc(sizeof prefix + 2 * sizeof digest);
    memcpy(out, prefix, sizeof prefix - 1);
    hex_encode((const char*) digest, sizeof digest, out + sizeof prefix - 1);
    out[sizeof prefix - 1 + 2 * sizeof digest] = '\0';
    return out;
}
