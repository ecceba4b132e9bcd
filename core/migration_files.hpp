// Migration files on disk: names, directives, validation and order.
//
// A folder holds NNN_name.up.sql with an optional NNN_name.down.sql, or NNN_name.sql
// (up only). Versions are digits compared as numbers (2 < 10, 001 == 1), so sequential
// numbers and the timestamps of `warden migrate create` sort together. Directives are
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

struct MigrationFile {
    std::string version;
    std::string name;
    std::string up_file;  // file names relative to the folder
    std::string down_file;  // empty when there is none
    std::string up_sql;
    std::string down_sql;
    bool has_down = false;
    bool transactional = true;
    std::string checksum;  // of the up script, by the core rule
};

// One file read from the folder.
struct ScriptFile {
    std::string file_name;
    std::string content;
};

// Builds the ordered set from the files of a folder. Throws warden::Error (22023) naming
// the file on: a .sql name that is not a migration name, duplicate versions, a down file
// without an up file, an empty or non-UTF-8 file, an unknown directive.
std::vector<MigrationFile> build_migration_set(const std::vector<ScriptFile>& files);

// Reads every regular file of dir and builds the set. Throws warden::Error when the
// folder can't be read, or (22023) when a .sql file is a symbolic link that leads out of
// dir, unless follow_symlinks: what gets applied must be what the folder holds.
std::vector<MigrationFile> load_migration_dir(const std::string& dir, bool follow_symlinks = false);

}  // namespace warden
