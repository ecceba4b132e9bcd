// Module entry point: the magic block and _PG_init, where settings are defined.
#include "pg_headers.h"

#include "audit.h"
#include "health_settings.h"
#include "ledger.h"
#include "ledger_plan.h"
#include "lockout_shmem.h"
#include "role_lockout.h"
#include "login_settings.h"
#include "settings.h"
#include "worker_shmem.h"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void)
{
    warden_audit_init();
    warden_ledger_init();
    warden_migration_safety_init();
    warden_worker_init();
    warden_define_login_settings();
    lockout_shmem_init();
    warden_role_lockout_init();
    warden_define_health_settings();
    // Last: reserving the prefix drops any warden.* placeholder not defined above.
    warden_define_settings();
}
