// Keeps the maintenance workers out of the way of DDL on databases, and tells the
// launcher when pg_warden appears or disappears somewhere.
//
// DROP DATABASE, ALTER DATABASE ... RENAME / SET TABLESPACE and CREATE DATABASE ...
// TEMPLATE x refuse to run while another session is connected to the database, and
// a background worker is such a session: the worker is stopped before the statement and
// allowed back afterwards; so is the worker of the current database during ALTER or
// DROP EXTENSION pg_warden, until the transaction ends. CREATE/ALTER/DROP EXTENSION
// pg_warden and CREATE DATABASE wake the launcher once their transaction commits, so a
// new installation gets its worker within moments instead of at the next periodic check.
#include "worker_shmem.h"

extern "C" {
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "nodes/parsenodes.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
}

static ProcessUtility_hook_type prev_process_utility = NULL;
static bool rescan_at_commit = false;
static Oid paused_until_xact_end = InvalidOid;
static bool xact_callback_registered = false;

static void warden_workers_xact_callback(XactEvent event, void* arg)
{
    if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT)
        return;
    if (OidIsValid(paused_until_xact_end)) {
        Oid dboid = paused_until_xact_end;
        paused_until_xact_end = InvalidOid;
        warden_workers_resume(dboid);
    }
    if (rescan_at_commit && event == XACT_EVENT_COMMIT)
        warden_workers_request_rescan();
    rescan_at_commit = false;
}

static void ensure_xact_callback(void)
{
    if (!xact_callback_registered) {
        RegisterXactCallback(warden_workers_xact_callback, NULL);
        xact_callback_registered = true;
    }
}

static bool has_option(List* options, const char* name)
{
    ListCell* lc;
    foreach (lc, options) {
        DefElem* opt = (DefElem*) lfirst(lc);
        if (strcmp(opt->defname, name) == 0)
            return true;
    }
    return false;
}

// The database a statement needs to itself, or NULL.
static const char* database_needing_exclusive_access(Node* stmt)
{
    if (IsA(stmt, DropdbStmt))
        return ((DropdbStmt*) stmt)->dbname;
    if (IsA(stmt, RenameStmt) && ((RenameStmt*) stmt)->renameType == OBJECT_DATABASE)
        return ((RenameStmt*) stmt)->subname;
    if (IsA(stmt, AlterDatabaseStmt) && has_option(((AlterDatabaseStmt*) stmt)->options, "tablespace"))
        return ((AlterDatabaseStmt*) stmt)->dbname;
    if (IsA(stmt, CreatedbStmt)) {
        ListCell* lc;
        foreach (lc, ((CreatedbStmt*) stmt)->options) {
            DefElem* opt = (DefElem*) lfirst(lc);
            if (strcmp(opt->defname, "template") == 0 && opt->arg)
                return defGetString(opt);
        }
    }
    return NULL;
}

static bool changes_where_warden_is_installed(Node* stmt)
{
    if (IsA(stmt, CreateExtensionStmt))
        return strcmp(((CreateExtensionStmt*) stmt)->extname, "pg_warden") == 0;
    if (IsA(stmt, AlterExtensionStmt))
        return strcmp(((AlterExtensionStmt*) stmt)->extname, "pg_warden") == 0;
    if (IsA(stmt, CreatedbStmt))
        return true;
    if (IsA(stmt, DropStmt) && ((DropStmt*) stmt)->removeType == OBJECT_EXTENSION) {
        ListCell* lc;
        foreach (lc, ((DropStmt*) stmt)->objects)
            if (strcmp(strVal(lfirst(lc)), "pg_warden") == 0)
                return true;
    }
    return false;
}

// ALTER and DROP EXTENSION pg_warden lock pg_warden's tables in an order of their own;
// a worker running jobs at that moment could deadlock with them.
static bool rewrites_warden_tables(Node* stmt)
{
    return changes_where_warden_is_installed(stmt) && !IsA(stmt, CreateExtensionStmt) &&
           !IsA(stmt, CreatedbStmt);
}

static void run_utility(PlannedStmt* pstmt, const char* queryString, bool readOnlyTree,
                        ProcessUtilityContext context, ParamListInfo params,
                        QueryEnvironment* queryEnv, DestReceiver* dest, QueryCompletion* qc)
{
    if (prev_process_utility)
        prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest,
                             qc);
    else
        standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
                                dest, qc);
}

static void warden_process_utility(PlannedStmt* pstmt, const char* queryString,
                                   bool readOnlyTree, ProcessUtilityContext context,
                                   ParamListInfo params, QueryEnvironment* queryEnv,
                                   DestReceiver* dest, QueryCompletion* qc)
{
    Node* stmt = pstmt->utilityStmt;
    const char* exclusive = database_needing_exclusive_access(stmt);
    Oid dboid = exclusive ? get_database_oid(exclusive, true) : InvalidOid;
    // Only for someone the statement will let through: others must not be able to bounce
    // a worker with a DROP DATABASE that is bound to fail.
    if (OidIsValid(dboid) && !pg_database_ownercheck(dboid, GetUserId()))
        dboid = InvalidOid;

    // The worker of this database steps aside until the transaction ends.
    if (rewrites_warden_tables(stmt) && !OidIsValid(paused_until_xact_end)) {
        Oid extension = get_extension_oid("pg_warden", true);
        if (OidIsValid(extension) && pg_extension_ownercheck(extension, GetUserId())) {
            ensure_xact_callback();
            paused_until_xact_end = MyDatabaseId;
            warden_workers_pause(MyDatabaseId);
        }
    }

    if (OidIsValid(dboid)) {
        warden_workers_pause(dboid);
        PG_TRY();
        {
            run_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
        }
        PG_CATCH();
        {
            warden_workers_resume(dboid);
            PG_RE_THROW();
        }
        PG_END_TRY();
        warden_workers_resume(dboid);
    } else {
        run_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
    }

    if (changes_where_warden_is_installed(stmt)) {
        ensure_xact_callback();
        rescan_at_commit = true;
    }
}

void warden_install_utility_hook(void)
{
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = warden_process_utility;
}
