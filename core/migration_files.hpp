// Migration files on disk: names, directives, validation and order.
//
// A folder holds migrations in one of four layouts (migration_layouts.cpp): golang-migrate
// (NNN_name.up.sql with an optional NNN_name.down.sql, or NNN_name.sql), Flyway, dbmate or
// suffixed. Ledger versions are digits compared as numbers (2 < 10, 001 == 1), so
// sequential numbers and the timestamps of `warden migrate create` sort together. Directives are
// comments in the first lines of a script: `-- warden:no-transaction` and
// `-- warden:allow rewrite|lock|scan`; any other `-- warden:` comment there is an error,
// so a typo can't silently change how a migration runs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warden {

enum class ScriptKind { up, down, plain };

struct MigrationFileName {
    std::string version;  // as written, leading zeros kept
    std::string name;
    ScriptKind kind;
};

// Parses a file name; nullopt when it is not a migration name (e.g. README.md, "x.sql").
std::optional<MigrationFileName> parse_migration_file_name(std::string_view file_name);

// A version as the ledger keys it: digits without leading zeros ("007" -> "7", "0" stays).
std::string_view version_key(std::string_view v);

// Numeric comparison of digit strings of any length: <0, 0, >0.
int compare_versions(std::string_view a, std::string_view b);

// True when every byte of s is digits (and s is non-empty).
bool is_version(std::string_view s);

struct ScriptDirectives {
    bool no_transaction = false;
    // `-- warden:allow rewrite|lock|scan`: the migration policy limits it lifts (migration_risk).
    std::vector<std::string> allow;
};

// Reads the directives of a script. Throws warden::Error (22023) on an unknown directive.
ScriptDirectives parse_directives(std::string_view script, std::string_view file_name = "script");

// True when the bytes are valid UTF-8.
bool is_valid_utf8(std::string_view bytes);

// The folder layouts `warden migrate --format` names; automatic detects one from the files.
enum class Layout { automatic, golang_migrate, flyway, dbmate, suffixed };

// "auto", "golang-migrate", "flyway", "dbmate", "suffixed".
const char* layout_name(Layout layout);
std::optional<Layout> parse_layout(std::string_view name);

struct MigrationFile {
    std::string version;  // the ledger's version: digits
    std::string file_version;  // as the files write it (Flyway's 1.2.10); shown to people
    std::string name;  // as the files give it
    std::string up_file;  // file names relative to the folder
    std::string down_file;  // empty when there is none
    std::string up_sql;
    std::string down_sql;
    bool has_down = false;
    bool transactional = true;
    bool down_transactional = true;  // false: the down script runs outside a transaction
    std::string checksum;  // of the up script, by the core rule
};

// A Flyway repeatable migration (R__description.sql): no version; applied after the
// versioned ones whenever its checksum differs from the one last applied.
struct RepeatableFile {
    std::string file;
    std::string name;  // the description, as the file gives it
    std::string sql;
    std::string checksum;
};

// One file read from the folder.
struct ScriptFile {
    std::string file_name;
    std::string content;
};

// Builds the ordered set from the files of a folder in the given layout, or the one that
// fits (automatic; *detected says which). Throws warden::Error (22023) naming the files on:
// .sql names that fit no layout (or not the forced one), duplicate versions, a down file
// without an up file, a non-UTF-8 file, an unknown directive. Empty and comment-only
// scripts are no-op migrations. A leading UTF-8 byte-order mark is removed from the
// scripts: what is sent to the server is what the checksum covers.
// Flyway's R__ files go to *repeatables, in name order (refused when it is null).
std::vector<MigrationFile> build_migration_set(const std::vector<ScriptFile>& files,
                                               Layout layout = Layout::automatic,
                                               Layout* detected = nullptr,
                                               std::vector<RepeatableFile>* repeatables = nullptr);

// The ledger version of a Flyway version ("1.2.10", "1_2", "007"): digits that compare as
// numbers the way Flyway orders versions, part by part, with missing parts as 0 (1.2 ==
// 1.2.0). The first part as written, then four more parts of six digits each. Throws
// (22023) on more than five parts or a part above 999999 after the first.
std::string flyway_ledger_version(std::string_view version);

// Reads every regular file of dir and builds the set. Throws warden::Error when the
// folder can't be read, or (22023) when a .sql file is a symbolic link that leads out of
// dir, unless follow_symlinks: what gets applied must be what the folder holds.
std::vector<MigrationFile> load_migration_dir(const std::string& dir, bool follow_symlinks = false,
                                              Layout layout = Layout::automatic,
                                              Layout* detected = nullptr,
                                              std::vector<RepeatableFile>* repeatables = nullptr);

}  // namespace warden
