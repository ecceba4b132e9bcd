// Role lockout: the client-authentication hook (role_lockout.cpp) and the worker that
// loads and persists role locks (role_lockout_worker.cpp).
#pragma once

#include "pg_headers.h"

extern bool warden_role_lockout;
extern char* warden_role_lockout_exempt;
extern char* warden_role_lockout_database;

// From _PG_init: settings; with pg_warden preloaded and warden.role_lockout on, the hook
// and the worker.
void warden_role_lockout_init(void);
void warden_register_role_lockout_worker(void);

extern "C" {
PGDLLEXPORT void warden_role_lockout_main(Datum main_arg);
}
