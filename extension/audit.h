// The audit trail's backend parts: the row trigger (audit_trigger.cpp), the append-only
// guards and retention mode (audit_guard.cpp), routing into time partitions
// (audit_route.cpp), inserting into them (audit_insert.cpp), the retention floor
// (audit_floor.cpp) and the keyed hash of excluded key columns (audit_key_hash.cpp).
#pragma once

#include "pg_headers.h"

extern "C" {
#include "datatype/timestamp.h"
#include "utils/relcache.h"
}

// Called from _PG_init: defines warden.actor and registers cache invalidation callbacks.
void warden_audit_init(void);

// Registers the transaction callbacks that end retention mode (audit_guard.cpp).
void warden_audit_guard_init(void);

// Defines warden.audit_min_retention (audit_floor.cpp).
void warden_audit_floor_init(void);

// "hmac-sha256:<hex>" of an excluded column's value (its text output) under the key in
// warden.audit_secret, palloc'd: what record_key holds instead of the value when an
// excluded column is part of the primary key. Errors out when the key is missing.
char* warden_audit_key_hash(const char* column, const char* value);

// The OID of the partition of warden.audit_log that a row logged at ts belongs to,
// locked RowExclusive; the parent is locked RowExclusive too. Never invalid: rows no
// partition covers go to the default partition.
Oid warden_audit_route(TimestampTz ts, Relation* parent_out);

// Registers the transaction callbacks that end seal mode (audit_seal.cpp).
void warden_audit_seal_init(void);

// Where the trigger inserts a row logged at ts: the parent and the partition, both locked
// RowExclusive for the rest of the (sub)transaction.
struct AuditTarget {
    Oid parent;
    Oid partition;
};
void warden_audit_target(TimestampTz ts, AuditTarget* target);

// The number of columns of warden.audit_log.
constexpr int WARDEN_AUDIT_LOG_NATTS = 17;

// Inserts one row of warden.audit_log (values and nulls in the parent's column order) into
// the partition that covers ts, and into the partition's indexes (audit_insert.cpp).
void warden_audit_insert(TimestampTz ts, Datum* values, bool* nulls);

// Registers the callbacks that release the per-transaction insert state (audit_insert.cpp).
void warden_audit_insert_init(void);

// Registers the invalidation callback that forgets warden.audit_log's OID (audit_route.cpp).
void warden_audit_route_init(void);
