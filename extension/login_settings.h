// The warden.* settings of session expiry and account locking.
#pragma once

#include "pg_headers.h"

void warden_define_login_settings(void);
