// Settings of the health checks (warden.health_*). Defined once, in _PG_init.
#pragma once

#include "pg_headers.h"

void warden_define_health_settings(void);

// Milliseconds one custom check's query may run (warden.custom_check_timeout).
extern int warden_custom_check_timeout;
