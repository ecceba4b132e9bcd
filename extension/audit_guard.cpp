// warden.audit_log is append-only: a BEFORE UPDATE/DELETE row trigger and BEFORE TRUNCATE
// statement triggers refuse every change, for every role, unless this backend is inside
// the retention routine (retention mode). Retention mode is switched by
// warden._audit_retention_mode(), which only the extension's SECURITY DEFINER routines
// can execute, and ends with the (sub)transaction that set it whatever happens.
//
// warden.security_events is the other half of the trail: the same kind of triggers let
// only a superuser change or empty it; the cleanup of old login events deletes
// in retention mode.
#include "audit.h"
#include "bridge.h"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
#include "miscadmin.h"
}

namespace {

bool retention_mode = false;

void end_retention_mode(XactEvent, void*)
{
    retention_mode = false;
}

void end_retention_mode_on_abort(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        retention_mode = false;
}

const char* operation_name(TriggerEvent event)
{
    return TRIGGER_FIRED_BY_UPDATE(event)     ? "UPDATE"
           : TRIGGER_FIRED_BY_DELETE(event)   ? "DELETE"
           : TRIGGER_FIRED_BY_TRUNCATE(event) ? "TRUNCATE"
                                              : "INSERT";
}

// What a BEFORE trigger returns to let the change through.
Datum let_through(TriggerData* trigger)
{
    TriggerEvent event = trigger->tg_event;
    if (!TRIGGER_FIRED_FOR_ROW(event))
        return PointerGetDatum(nullptr);
    return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(event) ? trigger->tg_newtuple : trigger->tg_trigtuple);
}

}  // namespace

void warden_audit_guard_init(void)
{
    RegisterXactCallback(end_retention_mode, nullptr);
    RegisterSubXactCallback(end_retention_mode_on_abort, nullptr);
}

WARDEN_FUNCTION(warden_audit_retention_mode)
{
    retention_mode = PG_GETARG_BOOL(0);
    PG_RETURN_VOID();
}

WARDEN_FUNCTION(warden_audit_log_guard)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden.audit_log_guard() must be called as a trigger")));
    TriggerData* trigger = (TriggerData*) fcinfo->context;
    if (!retention_mode)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("warden.audit_log is append-only"),
                        errdetail("%s is refused for every role, on the log and on each of its "
                                  "partitions.", operation_name(trigger->tg_event)),
                        errhint("Old audit rows are removed by warden.cleanup_audit().")));
    return let_through(trigger);
}

// The outer role decides (the login role, or the one SET ROLE chose), not the current
// user: inside the extension's SECURITY DEFINER routines the current user is the
// (superuser) owner, whoever called them.
WARDEN_FUNCTION(warden_security_events_guard)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("warden._security_events_guard() must be called as a trigger")));
    TriggerData* trigger = (TriggerData*) fcinfo->context;
    TriggerEvent event = trigger->tg_event;
    bool cleanup = retention_mode && TRIGGER_FIRED_BY_DELETE(event);
    if (!cleanup && !superuser_arg(GetOuterUserId()))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("warden.security_events is append-only"),
                        errdetail("%s is refused for every role but a superuser.", operation_name(event)),
                        errhint("Old login events are removed by warden.cleanup_login_attempts(), "
                                "never younger than warden.audit_min_retention.")));
    return let_through(trigger);
}
