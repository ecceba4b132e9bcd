// The audit trail's backend parts: the row trigger (audit_trigger.cpp), the append-only
// guard and retention mode (audit_guard.cpp), and routing into time partitions
// (audit_route.cpp).
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

// The OID of the partition of warden.audit_log that a row logged at ts belongs to,
// locked RowExclusive; the parent is locked RowExclusive too. Never invalid: rows no
// partition covers go to the default partition.
Oid warden_audit_route(TimestampTz ts, Relation* parent_out);

// Registers the invalidation callback that forgets warden.audit_log's OID (audit_route.cpp).
void warden_audit_route_init(void);
