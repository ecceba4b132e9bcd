// Module entry point: the magic block and _PG_init, where settings are defined.
#include "pg_headers.h"

#include "settings.h"
#include "worker_shmem.h"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void)
{
    // Settings are defined before warden_define_settings() reserves the prefix.
    warden_worker_init();
    warden_define_settings();
}
