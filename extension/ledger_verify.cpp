// warden.verify_migrations(files jsonb): the folder against the ledger in one call. Written
// in C because it runs over every file of large folders (10,000 and more) on each
// `warden migrate status`: one pass over the array, one ordered read of the ledger, a merge.
#include "ledger.h"

extern "C" {
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

#include "bridge.h"

namespace {

struct FileEntry {
    const char* key;  // version without leading zeros
    const char* version;
    const char* name;
    const char* checksum;
    int position;  // in the array, for a stable order among equal keys
};

struct LedgerEntry {
    const char* key;
    const char* version;
    const char* name;
    const char* state;
    const char* checksum;
    bool baseline;
};

const char* version_key(const char* v)
{
    while (v[0] == '0' && v[1] != '\0')
        v++;
    return v;
}

// Numeric order of digit strings without leading zeros.
int compare_keys(const char* a, const char* b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

int compare_files(const void* a, const void* b)
{
    const FileEntry* fa = (const FileEntry*) a;
    const FileEntry* fb = (const FileEntry*) b;
    int c = compare_keys(fa->key, fb->key);
    return c != 0 ? c : fa->position - fb->position;
}

bool all_chars_in(const char* s, const char* allowed)
{
    return s[0] != '\0' && strspn(s, allowed) == strlen(s);
}

// The string value of key in a JSON object, or NULL when absent or not a string.
const char* object_string(JsonbContainer* object, const char* key)
{
    JsonbValue k;
    k.type = jbvString;
    k.val.string.val = (char*) key;
    k.val.string.len = strlen(key);
    JsonbValue* v = findJsonbValueFromContainer(object, JB_FOBJECT, &k);
    if (v == NULL || v->type != jbvString)
        return NULL;
    return pnstrdup(v->val.string.val, v->val.string.len);
}

void not_an_array(void)
{
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("files must be a JSON array of {\"version\", \"name\", \"checksum\"} "
                           "objects")));
}

void put_row(ReturnSetInfo* rsinfo, const char* version, const char* name, const char* state,
             const char* file_checksum, const char* applied_checksum)
{
    const char* fields[5] = {version, name, state, file_checksum, applied_checksum};
    Datum values[5];
    bool nulls[5];
    for (int i = 0; i < 5; i++) {
        nulls[i] = fields[i] == NULL;
        values[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(fields[i]);
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

void invalid_entry(const char* text, const char* hint)
{
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("invalid migration file entry: %.200s", text), errhint("%s", hint)));
}

bool valid_entry(const FileEntry* e)
{
    return e->version != NULL && all_chars_in(e->version, "0123456789") && e->checksum != NULL &&
           strlen(e->checksum) == 64 && all_chars_in(e->checksum, "0123456789abcdef");
}

// Sorts the files, refuses duplicate versions, and merges them with the ledger into the
// result: one row per version of either side, in version order.
Datum verify_entries(FunctionCallInfo fcinfo, FileEntry* entries, int n_files)
{
    qsort(entries, n_files, sizeof(FileEntry), compare_files);
    for (int i = 1; i < n_files; i++)
        if (strcmp(entries[i - 1].key, entries[i].key) == 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("duplicate version in files: %s", entries[i - 1].version)));

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*) fcinfo->resultinfo;
    SPI_connect();
    static const char* sql =
        "SELECT version, name, state, checksum, baseline FROM warden.migrations "
        "WHERE state <> 'rolled_back' ORDER BY version_number";
    if (ledger_query(sql, 0, NULL, true, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read warden.migrations");
    uint64 n_ledger = SPI_processed;
    LedgerEntry* ledger = (LedgerEntry*) palloc(sizeof(LedgerEntry) * (n_ledger + 1));
    const char* baseline_key = NULL;
    for (uint64 i = 0; i < n_ledger; i++) {
        HeapTuple t = SPI_tuptable->vals[i];
        TupleDesc d = SPI_tuptable->tupdesc;
        LedgerEntry* l = &ledger[i];
        l->version = SPI_getvalue(t, d, 1);
        l->name = SPI_getvalue(t, d, 2);
        l->state = SPI_getvalue(t, d, 3);
        l->checksum = SPI_getvalue(t, d, 4);
        l->baseline = strcmp(SPI_getvalue(t, d, 5), "t") == 0;
        l->key = version_key(l->version);
        if (l->baseline)
            baseline_key = l->key;
    }

    // Both sides are in numeric version order: merge them.
    int f = 0;
    uint64 m = 0;
    while (f < n_files || m < n_ledger) {
        int c = f == n_files ? 1 : (m == n_ledger ? -1 : compare_keys(entries[f].key, ledger[m].key));
        if (c < 0) {
            const FileEntry* e = &entries[f++];
            bool covered = baseline_key && compare_keys(e->key, baseline_key) <= 0;
            put_row(rsinfo, e->version, e->name, covered ? "ok" : "pending", e->checksum, NULL);
            continue;
        }
        const LedgerEntry* l = &ledger[m++];
        const FileEntry* e = c == 0 ? &entries[f++] : NULL;
        const char* state;
        if (strcmp(l->state, "applied") != 0)
            state = "failed";
        else if (l->baseline)
            state = "ok";
        else if (e == NULL)
            state = "missing_file";
        else
            // A row without a checksum (only baselines have none, but a superuser can
            // write anything) cannot match.
            state = l->checksum != NULL && strcmp(l->checksum, e->checksum) == 0 ? "ok" : "modified";
        put_row(rsinfo, e ? e->version : l->version, e && e->name ? e->name : l->name, state,
                e ? e->checksum : NULL, l->checksum);
    }
    SPI_finish();
    return (Datum) 0;
}

}  // namespace

WARDEN_FUNCTION(warden_verify_migrations)
{
    if (PG_ARGISNULL(0))
        not_an_array();
    Jsonb* files = PG_GETARG_JSONB_P(0);
    if (!JB_ROOT_IS_ARRAY(files) || JB_ROOT_IS_SCALAR(files))
        not_an_array();

    int n_files = JB_ROOT_COUNT(files);
    FileEntry* entries = (FileEntry*) palloc(sizeof(FileEntry) * (n_files + 1));
    for (int i = 0; i < n_files; i++) {
        JsonbValue* element = getIthJsonbValueFromContainer(&files->root, i);
        if (element->type != jbvBinary || !JsonContainerIsObject(element->val.binary.data))
            not_an_array();
        JsonbContainer* object = element->val.binary.data;
        FileEntry* e = &entries[i];
        e->version = object_string(object, "version");
        e->name = object_string(object, "name");
        e->checksum = object_string(object, "checksum");
        e->position = i;
        if (!valid_entry(e))
            invalid_entry(JsonbToCString(NULL, object, element->val.binary.len),
                          "Each entry needs \"version\" (digits) and \"checksum\" "
                          "(lowercase hex SHA-256).");
        e->key = version_key(e->version);
    }
    return verify_entries(fcinfo, entries, n_files);
}

// The same for the utility, which sends its 10,000 files as text lines
// "version<TAB>name<TAB>checksum": parsing them costs a tenth of parsing the JSON.
WARDEN_FUNCTION(warden_verify_migration_lines)
{
    char* lines = PG_ARGISNULL(0) ? pstrdup("") : text_to_cstring(PG_GETARG_TEXT_PP(0));
    int capacity = 64, n_files = 0;
    FileEntry* entries = (FileEntry*) palloc(sizeof(FileEntry) * capacity);
    for (char* line = lines; *line != '\0';) {
        char* end = strchr(line, '\n');
        if (end != NULL)
            *end = '\0';
        if (n_files == capacity) {
            capacity *= 2;
            entries = (FileEntry*) repalloc(entries, sizeof(FileEntry) * capacity);
        }
        FileEntry* e = &entries[n_files];
        char* name = strchr(line, '\t');
        char* checksum = name ? strchr(name + 1, '\t') : NULL;
        if (checksum == NULL)
            invalid_entry(line, "Each line is version, name and checksum separated by tabs.");
        *name++ = '\0';
        *checksum++ = '\0';
        e->version = line;
        e->name = name;
        e->checksum = checksum;
        e->position = n_files;
        if (!valid_entry(e))
            invalid_entry(psprintf("%s %s %s", e->version, e->name, e->checksum),
                          "The version is digits and the checksum lowercase hex SHA-256.");
        e->key = version_key(e->version);
        n_files++;
        if (end == NULL)
            break;
        line = end + 1;
    }
    return verify_entries(fcinfo, entries, n_files);
}
