// Module entry point: the magic block and _PG_init, where settings are defined.
#include "pg_headers.h"

#include "health_settings.h"
#include "settings.h"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void)
{
    warden_define_health_settings();
    warden_define_settings();
}
