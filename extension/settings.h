// pg_warden's GUC settings (the "warden." prefix). Defined once, in _PG_init.
#pragma once

#include "pg_headers.h"

void warden_define_settings(void);
