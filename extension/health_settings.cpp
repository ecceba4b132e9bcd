// warden.health_snapshot_retention: how much snapshot history warden.health_snapshot()
// keeps; warden.custom_check_timeout: how long one custom check's query may run. Settings
// rather than table rows so that ALTER SYSTEM / ALTER DATABASE and postgresql.conf manage
// them like autovacuum's own knobs; SQL reads them with current_setting.
#include "health_settings.h"

extern "C" {
#include "utils/guc.h"
}

static int warden_health_snapshot_retention = 7 * 24 * 60;
int warden_custom_check_timeout = 5000;

void warden_define_health_settings(void)
{
    DefineCustomIntVariable("warden.health_snapshot_retention",
                            "How long warden.health_snapshot() keeps health snapshots.",
                            "Each snapshot deletes the snapshots older than this.",
                            &warden_health_snapshot_retention, 7 * 24 * 60, 5, 3650 * 24 * 60,
                            PGC_SUSET, GUC_UNIT_MIN, nullptr, nullptr, nullptr);
    // SUSET: a monitoring role must not let a slow custom check hold its session longer.
    DefineCustomIntVariable("warden.custom_check_timeout",
                            "How long the query of one custom health check may run.",
                            "A check whose query runs longer is unknown, with the timeout "
                            "as its detail.",
                            &warden_custom_check_timeout, 5000, 1, 3600 * 1000, PGC_SUSET,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
}
