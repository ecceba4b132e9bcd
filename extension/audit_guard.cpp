// warden.audit_log is append-only: a BEFORE UPDATE/DELETE row trigger and BEFORE TRUNCATE
// statement triggers refuse every change, for every role, unless this backend is inside
// the retention routine (retention mode). Retention mode is switched by
// warden._audit_retention_mode(), which only the extension's SECURITY DEFINER routines
// can execute, and ends with the (sub)transaction that set it whatever happens.
#include "audit.h"
#include "bridge.h"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
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
    TriggerEvent event = trigger->tg_event;
    if (!retention_mode) {
        const char* op = TRIGGER_FIRED_BY_UPDATE(event)   ? "UPDATE"
                         : TRIGGER_FIRED_BY_DELETE(event) ? "DELETE"
                         : TRIGGER_FIRED_BY_TRUNCATE(event) ? "TRUNCATE"
                                                            : "INSERT";
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("warden.audit_log is append-only"),
                        errdetail("%s is refused for every role, on the log and on each of its "
                                  "partitions.", op),
                        errhint("Old audit rows are removed by warden.cleanup_audit().")));
    }
    if (!TRIGGER_FIRED_FOR_ROW(event))
        return PointerGetDatum(nullptr);
    return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(event) ? trigger->tg_newtuple : trigger->tg_trigtuple);
}
