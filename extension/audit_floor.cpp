// The floor of the audit trail's retention: warden.audit_min_retention, which only a
// superuser sets. Retention settings below it are refused, and warden.cleanup_audit()
// and the cleanup of security events never remove anything younger, whatever a
// warden_admin member configures or passes.
//
// The SQL routines read it through warden._audit_min_retention() rather than
// current_setting(): calling a C function loads this library (and defines the setting)
// first, so a placeholder a non-superuser SET before the library was loaded is never read.
#include <climits>

#include "audit.h"
#include "bridge.h"

extern "C" {
#include "utils/guc.h"
#include "utils/timestamp.h"
}

namespace {

constexpr int minutes_per_week = 7 * 24 * 60;
int audit_min_retention_minutes = minutes_per_week;

}  // namespace

void warden_audit_floor_init(void)
{
    DefineCustomIntVariable(
        "warden.audit_min_retention",
        "Shortest retention of the audit trail (audit log and security events).",
        "Set by a superuser. Retention settings below it are refused, and cleanup never removes "
        "audit rows or security events younger than it. 0 leaves only the retention settings.",
        &audit_min_retention_minutes, minutes_per_week, 0, INT_MAX, PGC_SUSET, GUC_UNIT_MIN,
        nullptr, nullptr, nullptr);
}

WARDEN_FUNCTION(warden_audit_min_retention)
{
    Interval* floor = (Interval*) palloc0(sizeof(Interval));
    // Whole days as days, so that messages say "7 days" rather than "168:00:00".
    floor->day = audit_min_retention_minutes / (HOURS_PER_DAY * MINS_PER_HOUR);
    floor->time = (TimeOffset) (audit_min_retention_minutes % (HOURS_PER_DAY * MINS_PER_HOUR)) * USECS_PER_MINUTE;
    PG_RETURN_INTERVAL_P(floor);
}
