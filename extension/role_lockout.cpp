// Role lockout: failed password authentications of database roles, counted per role and
// per source address in the server's client-authentication hook, under the rule of
// warden.lockout_policy (threshold, window, progressive lock, source throttling and its
// allow-list).
//
// The hook runs in a new backend before it has a database or a transaction: it reads no
// table and runs no SQL, so no user-definable code can run in it. It works only on
// shared memory (the counters, the policy and the persisted locks, which the role
// lockout worker of role_lockout_worker.cpp loaded at start) and queues events for that
// worker, which writes them and the counters into warden.security_events and
// warden.role_login_attempts of warden.role_lockout_database.
//
// A locked role's login with the right password is refused with exactly the message a
// wrong password gets (FATAL 28P01 "password authentication failed for user ..."), so the
// refusal reveals nothing; the reason goes to the server log only (errdetail_log).
#include "bridge.h"
#include "lockout_rule.h"
#include "lockout_shmem.h"
#include "lockout_sync.h"
#include "role_lockout.h"

// libpq-be.h includes the GSSAPI headers when the server was built with GSSAPI, and those
// are not installed with the server's development files. Port's layout does not depend
// on it (its gss member is a pointer either way), and nothing here touches GSSAPI.
#undef ENABLE_GSS

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/ip.h"
#include "funcapi.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"
}

bool warden_role_lockout = false;
char* warden_role_lockout_exempt = nullptr;
char* warden_role_lockout_database = nullptr;

namespace {

ClientAuthentication_hook_type prev_hook;

// How long a login waits for the worker to load the persisted locks after a start.
constexpr int LOAD_WAIT_MS = 5000;
constexpr int LOAD_WINDOW_MS = 60000;

bool password_method(const Port* port)
{
    UserAuth m = port->hba->auth_method;
    return m == uaPassword || m == uaMD5 || m == uaSCRAM;
}

bool exempt(const char* role, const NameData& bootstrap_superuser)
{
    if (warden_role_lockout_exempt == nullptr || warden_role_lockout_exempt[0] == '\0')
        return strcmp(role, NameStr(bootstrap_superuser)) == 0;
    char* copy = pstrdup(warden_role_lockout_exempt);
    List* names = NIL;
    bool found = false;
    if (SplitIdentifierString(copy, ',', &names)) {
        ListCell* cell;
        foreach (cell, names)
            if (strcmp(role, static_cast<const char*>(lfirst(cell))) == 0)
                found = true;
    }
    list_free(names);
    pfree(copy);
    return found;
}

// The client's address in inet's text form; false for a Unix-domain socket.
bool source_of(const Port* port, char* out, size_t len)
{
    int family = port->raddr.addr.ss_family;
    if (family != AF_INET && family != AF_INET6)
        return false;
    char host[NI_MAXHOST];
    if (pg_getnameinfo_all(&port->raddr.addr, port->raddr.salen, host, sizeof host, nullptr, 0,
                           NI_NUMERICHOST) != 0)
        return false;
    char* scope = strchr(host, '%');  // an IPv6 zone is not part of an inet
    if (scope != nullptr)
        *scope = '\0';
    Datum inet = DirectFunctionCall1(inet_in, CStringGetDatum(host));
    strlcpy(out, DatumGetCString(DirectFunctionCall1(inet_out, inet)), len);
    return true;
}

bool allowed(const char* source, const LockoutRolePolicy& policy)
{
    Datum inet = DirectFunctionCall1(inet_in, CStringGetDatum(source));
    for (int i = 0; i < policy.nallowed; i++)
        if (DatumGetBool(DirectFunctionCall2(network_subeq, inet,
                                             PointerGetDatum(policy.allowed[i]))))
            return true;
    return false;
}

void queue_event(uint8 type, uint8 detail, const char* role, const char* source, int32 failures,
                 bool has_until, TimestampTz until)
{
    LockoutEvent e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.detail = detail;
    e.has_source = source != nullptr;
    if (source != nullptr)
        strlcpy(e.source, source, sizeof e.source);
    e.failures = failures;
    e.has_until = has_until;
    e.locked_until = until;
    e.occurred_at = GetCurrentTimestamp();
    namestrcpy(&e.actor, role);
    e.principal_len = (uint16) Min(strlen(role), (size_t) LOCKOUT_NAME_MAX);
    memcpy(e.principal, role, e.principal_len);
    lockout_enqueue_event(&e);
}

bool no_row(const LockoutKey*, void*, LockoutState*)
{
    return false;  // every persisted lock was loaded at start; anything else starts at zero
}

[[noreturn]] void refuse(const char* role, const char* why)
{
    ereport(FATAL, (errcode(ERRCODE_INVALID_PASSWORD),
                    errmsg("password authentication failed for user \"%s\"", role),
                    errdetail_log("pg_warden role lockout: %s", why)));
}

// The source's failures in its window; counts this one when count is set. Returns true
// when the source is over its limit.
bool source_over_limit(const char* source, const LockoutRolePolicy& policy, TimestampTz now,
                       bool count, const char* role)
{
    LockoutKey key;
    lockout_make_role_key(&key, LOCKOUT_ROLE_SOURCE, source, (int) strlen(source));
    TimestampTz cutoff = lockout_minus(now, &policy.source_window);
    LockoutEntry* e = lockout_acquire(&key, no_row, nullptr);
    LockoutState& s = e->state;
    bool expired = !s.has_window || s.window_start <= cutoff;
    int32 current = expired ? 0 : s.failures;
    bool changed = false;
    if (count && current <= policy.source_threshold) {
        if (expired) {
            s.failures = 1;
            s.window_start = now;
            s.has_window = true;
        } else {
            s.failures++;
        }
        current = s.failures;
        changed = true;
    }
    TimestampTz until = s.has_window ? lockout_plus(s.window_start, &policy.source_window) : 0;
    lockout_release(e, changed);
    if (changed && current == policy.source_threshold + 1)
        queue_event(LOCKOUT_EV_ROLE_SOURCE_THROTTLED, LOCKOUT_DETAIL_NONE, role, source, current,
                    true, until);
    return current > policy.source_threshold;
}

void role_authentication(Port* port, int status)
{
    if (prev_hook)
        prev_hook(port, status);
    if (!warden_role_lockout || !lockout_shared_ready() || status == STATUS_EOF ||
        !password_method(port))
        return;

    LockoutRolePolicy policy;
    NameData bootstrap_superuser;
    // Right after a start, logins wait (bounded) for the worker to load the locks; later
    // a worker that cannot load them (no such database) does not hold every login up.
    bool loaded = lockout_roles_loaded(&policy, &bootstrap_superuser);
    if (!loaded && !TimestampDifferenceExceeds(PgStartTime, GetCurrentTimestamp(), LOAD_WINDOW_MS))
        for (int waited = 0; !(loaded = lockout_roles_loaded(&policy, &bootstrap_superuser)) &&
                             waited < LOAD_WAIT_MS; waited += 10)
            pg_usleep(10000L);
    if (!loaded) {
        ereport(LOG, (errmsg("pg_warden role lockout is not in force yet: its worker has not "
                             "loaded the persisted locks")));
        return;
    }
    const char* role = port->user_name;
    if (exempt(role, bootstrap_superuser))
        return;
    char source_buf[LOCKOUT_SOURCE_MAX];
    const char* source = source_of(port, source_buf, sizeof source_buf) ? source_buf : nullptr;
    bool throttled_kind = source != nullptr && policy.throttles_sources && !allowed(source, policy);
    TimestampTz now = GetCurrentTimestamp();

    if (throttled_kind && source_over_limit(source, policy, now, status == STATUS_ERROR, role)) {
        queue_event(LOCKOUT_EV_ROLE_LOGIN_FAILED,
                    status == STATUS_OK ? LOCKOUT_DETAIL_ROLE_SOURCE_REFUSED
                                        : LOCKOUT_DETAIL_SOURCE_THROTTLED,
                    role, source, 0, false, 0);
        if (status == STATUS_OK)
            refuse(role, psprintf("source address %s is throttled after more than %d failed "
                                  "password authentications", source, policy.source_threshold));
        return;
    }

    LockoutKey key;
    lockout_make_role_key(&key, LOCKOUT_ROLE, role, (int) strlen(role));
    LockoutEntry* e = lockout_acquire(&key, no_row, nullptr);
    LockoutState& s = e->state;
    if (s.has_until && s.locked_until > now) {
        LockoutState locked = s;
        lockout_release(e, false);
        queue_event(LOCKOUT_EV_ROLE_LOGIN_FAILED,
                    status == STATUS_OK ? LOCKOUT_DETAIL_ROLE_REFUSED : LOCKOUT_DETAIL_WHILE_LOCKED,
                    role, source, locked.failures, true, locked.locked_until);
        if (status == STATUS_OK)
            refuse(role, psprintf("role \"%s\" is locked until %s after %d failed password "
                                  "authentications; the right password was refused",
                                  role, timestamptz_to_str(locked.locked_until), locked.failures));
        return;
    }
    if (status == STATUS_OK) {
        bool reset = s.failures > 0 || s.lockouts > 0 || s.has_until;
        if (reset) {
            TimestampTz last_failure = s.last_failure_at;
            bool has_last_failure = s.has_last_failure;
            memset(&s, 0, sizeof s);
            s.last_failure_at = last_failure;
            s.has_last_failure = has_last_failure;
        }
        lockout_release(e, reset);
        return;
    }
    LockoutRule rule{policy.threshold, policy.window, policy.lock_duration, policy.backoff,
                     policy.max_lock, policy.has_permanent_after, policy.permanent_after};
    bool locked = lockout_count_failure(&s, rule, now);
    LockoutState after = s;
    lockout_release(e, true);
    queue_event(LOCKOUT_EV_ROLE_LOGIN_FAILED, LOCKOUT_DETAIL_NONE, role, source, after.failures,
                locked, after.locked_until);
    if (locked) {
        queue_event(LOCKOUT_EV_ROLE_LOCKED, LOCKOUT_DETAIL_THRESHOLD, role, source, after.failures,
                    true, after.locked_until);
        ereport(LOG, (errmsg("pg_warden role lockout: role \"%s\" locked until %s after %d failed "
                             "password authentications (last from %s)",
                             role, timestamptz_to_str(after.locked_until), after.failures,
                             source != nullptr ? source : "a local socket")));
    }
}

}  // namespace

void warden_role_lockout_init(void)
{
    DefineCustomBoolVariable(
        "warden.role_lockout",
        "Locks database roles after failed password authentications (warden.lockout_policy).",
        "Needs pg_warden in shared_preload_libraries; takes effect at server start.",
        &warden_role_lockout, false, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "warden.role_lockout_exempt",
        "Roles role lockout never locks (comma-separated); empty: the bootstrap superuser.",
        nullptr, &warden_role_lockout_exempt, "", PGC_SIGHUP, GUC_LIST_INPUT,
        nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "warden.role_lockout_database",
        "Database whose pg_warden keeps the role locks, their events and the policy.", nullptr,
        &warden_role_lockout_database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    if (!process_shared_preload_libraries_in_progress || !warden_role_lockout)
        return;
    prev_hook = ClientAuthentication_hook;
    ClientAuthentication_hook = role_authentication;
    warden_register_role_lockout_worker();
}

// warden._unlock_role(role name) -> boolean: was the role locked. The reset reaches the
// shared counter when the caller's transaction commits.
WARDEN_FUNCTION(warden_unlock_role)
{
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("role must not be NULL")));
    if (!lockout_shared_ready() || !warden_role_lockout)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("role lockout is not enabled"),
                        errhint("Set warden.role_lockout = on with pg_warden in "
                                "shared_preload_libraries, and restart.")));
    const char* dbname = get_database_name(MyDatabaseId);
    if (dbname == nullptr || strcmp(dbname, warden_role_lockout_database) != 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("role locks are kept in database \"%s\"", warden_role_lockout_database),
                        errhint("Connect to that database (warden.role_lockout_database) to unlock a role.")));
    const char* role = NameStr(*PG_GETARG_NAME(0));
    LockoutKey key;
    lockout_make_role_key(&key, LOCKOUT_ROLE, role, (int) strlen(role));
    bool was_locked = false;
    LockoutEntry* e = lockout_find(&key);
    if (e != nullptr) {
        was_locked = e->state.has_until && e->state.locked_until > GetCurrentTimestamp();
        lockout_release(e, false);
    }
    lockout_defer(&key, LockoutApply::reset, nullptr, 0);
    PG_RETURN_BOOL(was_locked);
}

// warden._role_lockouts(): the role counters as they stand in shared memory.
WARDEN_FUNCTION(warden_role_lockouts)
{
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    if (!lockout_shared_ready())
        return (Datum) 0;
    constexpr int max = 10000;
    auto* keys = static_cast<LockoutKey*>(palloc(sizeof(LockoutKey) * max));
    auto* states = static_cast<LockoutState*>(palloc(sizeof(LockoutState) * max));
    int n = lockout_role_entries(keys, states, max);
    TimestampTz now = GetCurrentTimestamp();
    for (int i = 0; i < n; i++) {
        const LockoutState& s = states[i];
        Datum values[7];
        bool nulls[7] = {false, false, !s.has_window, !s.has_last_failure, false, !s.has_until, false};
        char name[LOCKOUT_NAME_MAX + 1];
        memcpy(name, keys[i].name, keys[i].len);
        name[keys[i].len] = '\0';
        values[0] = CStringGetTextDatum(name);
        values[1] = Int32GetDatum(s.failures);
        values[2] = TimestampTzGetDatum(s.window_start);
        values[3] = TimestampTzGetDatum(s.last_failure_at);
        values[4] = Int32GetDatum(s.lockouts);
        values[5] = TimestampTzGetDatum(s.locked_until);
        values[6] = BoolGetDatum(s.has_until && s.locked_until > now);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
