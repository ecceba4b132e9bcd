// Running migration scripts through SPI, one statement at a time, so that an error can
// name the line of the script it came from.
#include "ledger.h"

extern "C" {
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
}

#include "bridge.h"

// 1-based line of a byte offset; CRLF, LF and a lone CR each end a line.
static int line_at(const char* script, int offset)
{
    int line = 1;
    for (int i = 0; i < offset && script[i]; i++) {
        if (script[i] == '\n' || (script[i] == '\r' && script[i + 1] != '\n'))
            line++;
    }
    return line;
}

// A raw statement starts right after the previous semicolon; its first token comes after
// blanks and comments.
static int first_token(const char* script, int offset, int end)
{
    int i = offset;
    while (i < end) {
        if (script[i] == ' ' || script[i] == '\t' || script[i] == '\n' || script[i] == '\r') {
            i++;
        } else if (script[i] == '-' && i + 1 < end && script[i + 1] == '-') {
            while (i < end && script[i] != '\n')
                i++;
        } else if (script[i] == '/' && i + 1 < end && script[i + 1] == '*') {
            int depth = 0;
            do {
                if (script[i] == '/' && i + 1 < end && script[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (script[i] == '*' && i + 1 < end && script[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else {
                    i++;
                }
            } while (i < end && depth > 0);
        } else {
            break;
        }
    }
    return i;
}

static int statement_end(const char* script, const RawStmt* stmt)
{
    return stmt->stmt_len > 0 ? stmt->stmt_location + stmt->stmt_len : (int) strlen(script);
}

// Re-raises the current error with "<what> failed at line N: " before its message.
// Positions are dropped: they would point into the caller's SELECT, not the script.
static void rethrow_with_line(MemoryContext context, const char* what, const char* script,
                              int stmt_offset, const char* stmt)
{
    MemoryContextSwitchTo(context);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    int offset = stmt_offset;
    if (stmt == NULL && edata->cursorpos > 0)
        offset = pg_mbcharcliplen(script, strlen(script), edata->cursorpos - 1);
    else if (stmt != NULL && edata->internalpos > 0 && edata->internalquery &&
             strcmp(edata->internalquery, stmt) == 0)
        offset = stmt_offset + pg_mbcharcliplen(stmt, strlen(stmt), edata->internalpos - 1);
    edata->message = psprintf("%s failed at line %d: %s", what, line_at(script, offset),
                              edata->message);
    edata->cursorpos = 0;
    edata->internalpos = 0;
    edata->internalquery = NULL;
    ReThrowError(edata);
}

void ledger_run_script(const char* what, const char* script)
{
    MemoryContext context = CurrentMemoryContext;
    volatile int stmt_offset = 0;
    const char* volatile stmt_text = NULL;

    PG_TRY();
    {
        List* statements = pg_parse_query(script);
        ListCell* lc;
        foreach (lc, statements) {
            RawStmt* raw = lfirst_node(RawStmt, lc);
            int end = statement_end(script, raw);
            int start = first_token(script, raw->stmt_location, end);
            char* text = pnstrdup(script + start, end - start);
            stmt_offset = start;
            stmt_text = text;
            int rc = SPI_execute(text, false, 0);
            if (rc == SPI_ERROR_TRANSACTION)
                ereport(ERROR,
                        (errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
                         errmsg("transaction control is not allowed in a migration script"),
                         errhint("Each migration runs in one transaction. For statements "
                                 "that can't run in a transaction block, start the file with "
                                 "\"-- warden:no-transaction\".")));
            if (rc < 0)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("statement not supported in a migration script: %s",
                                       SPI_result_code_string(rc))));
        }
    }
    PG_CATCH();
    {
        rethrow_with_line(context, what, script, stmt_offset, stmt_text);
    }
    PG_END_TRY();
}

void ledger_run_script_as(Oid role, const char* what, const char* script)
{
    // As VACUUM runs as a table's owner: an error unwinds both the user switch and the
    // setting level with the (sub)transaction.
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(role, saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                     SECURITY_RESTRICTED_OPERATION);
    int nest_level = NewGUCNestLevel();
    ledger_run_script(what, script);
    AtEOXact_GUC(false, nest_level);
    SetUserIdAndSecContext(saved_user, saved_context);
}

// warden.split_script(script): (line, statement) for each statement, as the server's own
// parser sees them, so a client can run a non-transactional script at top level.
WARDEN_FUNCTION(warden_split_script)
{
    char* script = text_to_cstring(PG_GETARG_TEXT_PP(0));
    MemoryContext context = CurrentMemoryContext;
    List* volatile statements = NIL;
    PG_TRY();
    {
        statements = pg_parse_query(script);
    }
    PG_CATCH();
    {
        rethrow_with_line(context, "script", script, 0, NULL);
    }
    PG_END_TRY();

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    ListCell* lc;
    foreach (lc, statements) {
        RawStmt* raw = lfirst_node(RawStmt, lc);
        int end = statement_end(script, raw);
        int start = first_token(script, raw->stmt_location, end);
        Datum values[2] = {Int32GetDatum(line_at(script, start)),
                           PointerGetDatum(cstring_to_text_with_len(script + start, end - start))};
        bool nulls[2] = {false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
