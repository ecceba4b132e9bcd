// Settings of login hygiene: how long one CALL warden.expire_rows() may work before it
// leaves the rest of the backlog to the next run.
#include "login_settings.h"

extern "C" {
#include "utils/guc.h"
}

static int expiry_time_budget_ms = 60000;

void warden_define_login_settings(void)
{
    DefineCustomIntVariable(
        "warden.expiry_time_budget",
        "Time after which warden.expire_rows() stops starting new batches.",
        "Each batch commits on its own; what is left is handled by the next run.",
        &expiry_time_budget_ms, 60000, 1, 24 * 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
}
