// warden._cached_table_changed(): a statement trigger for tables that backends keep
// copies of (warden.lockout_policy, warden.expiry_policies). It sends a relcache
// invalidation for the table, which reaches every backend when the change commits (and
// this one at once); their callbacks then drop their copies.
#include "bridge.h"

extern "C" {
#include "commands/trigger.h"
#include "utils/inval.h"
#include "utils/rel.h"
}

WARDEN_FUNCTION(warden_cached_table_changed)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._cached_table_changed() must be called as a trigger")));
    TriggerData* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    CacheInvalidateRelcacheByRelid(RelationGetRelid(trigger->tg_relation));
    return PointerGetDatum(nullptr);
}
