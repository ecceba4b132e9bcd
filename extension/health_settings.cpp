// warden.health_snapshot_retention: how much snapshot history warden.health_snapshot()
// keeps. A setting rather than a table row so that ALTER SYSTEM / ALTER DATABASE and
// postgresql.conf manage it like autovacuum's own knobs; SQL reads it with current_setting.
#include "health_settings.h"

extern "C" {
#include "utils/guc.h"
}

static int warden_health_snapshot_retention = 7 * 24 * 60;

void warden_define_health_settings(void)
{
    DefineCustomIntVariable("warden.health_snapshot_retention",
                            "How long warden.health_snapshot() keeps health snapshots.",
                            "Each snapshot deletes the snapshots older than this.",
                            &warden_health_snapshot_retention, 7 * 24 * 60, 5, 3650 * 24 * 60,
                            PGC_SUSET, GUC_UNIT_MIN, nullptr, nullptr, nullptr);
}
