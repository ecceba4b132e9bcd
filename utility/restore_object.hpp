// One table or one database out of a backup, into another server (docs/backup.md,
// "Restoring one table or one database"): `warden restore ID --table SCHEMA.NAME
// --into CONNINFO` and `--database NAME --into CONNINFO`.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "backup_catalog.hpp"

namespace warden {

struct ObjectRestoreOptions {
    std::string table;     // SCHEMA.NAME; empty: the whole database
    std::string database;  // the database in the backup; default: --into's database
    std::string into;      // the target database (conninfo)
    std::string scratch, os_user;  // physical: the scratch server, as for a drill
    bool quiet = false;
};

struct ObjectRestoreReport {
    std::string source_database;
    std::map<std::string, std::int64_t> rows;  // table -> rows, equal in the backup and the target
};

// Physical backups: the backup (chain) restored into a scratch server, the object dumped
// from it with pg_dump and loaded with pg_restore --no-owner --no-privileges, the scratch
// removed. Logical backups: pg_restore of just that object (or all of it). The target
// must not already hold the table (with --table) or any table (without). Row counts are
// compared with the backup's; a difference is an error.
ObjectRestoreReport restore_object(const std::string& dir, const BackupInfo& info, const ObjectRestoreOptions& opts);

// Splits SCHEMA.NAME; throws warden::Error for anything else (quoted names, patterns).
std::pair<std::string, std::string> split_table_name(const std::string& table);

}  // namespace warden
