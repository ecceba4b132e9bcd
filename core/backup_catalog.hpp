// The backup catalog: a folder with one subfolder per backup, each described by a
// backup.json written last. A subfolder without a readable backup.json is not a backup.
// The files themselves are read and written by the utility (utility/catalog_files.hpp).
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warden {

// One file stored in a backup folder, or one member/segment inside an archive.
struct CatalogFile {
    std::string name;
    std::uint64_t size = 0;
    std::string sha256;
};

struct CatalogTablespace {
    std::string oid;
    std::string location;  // the path on the server when the backup was taken
    std::string archive;   // the stored file holding it
};

struct BackupInfo {
    std::string id;
    std::string kind;  // "physical" or "logical"
    // Physical: "full", or "incremental" / "differential" with the parent it adds to.
    std::string type = "full";
    std::string parent;
    std::string label;
    std::string status = "complete";
    std::string started_at;   // ISO 8601 UTC
    std::string finished_at;  // ISO 8601 UTC
    std::string start_lsn;
    std::string stop_lsn;
    std::uint32_t timeline = 0;
    std::string system_identifier;
    int server_version_num = 0;
    std::string server_version;
    std::string database;  // logical backups
    std::string compression = "none";
    int compression_level = 0;
    std::uint64_t original_bytes = 0;  // before compression
    std::uint64_t stored_bytes = 0;    // on disk
    double backup_seconds = 0;
    std::optional<std::string> verified_at;
    std::optional<bool> verify_ok;
    std::optional<double> verify_seconds;
    std::optional<double> restore_seconds;  // measured by the last drill
    std::optional<std::string> ledger_version;
    std::string conninfo;  // password masked
    std::string warden_version;
    std::vector<CatalogFile> files;  // stored files, checksummed as stored
    std::vector<CatalogFile> wal;    // WAL segments inside the base archive (physical)
    std::uint64_t wal_segment_size = 0;
    std::vector<CatalogTablespace> tablespaces;
    std::map<std::string, std::int64_t> row_counts;  // logical: table -> exact rows
    // Encrypted (AES-256-GCM) stored archives: how to recognise the key, never the key.
    std::string encryption_salt;
    std::string encryption_key_check;

    // True when the last verification (verify or drill) failed.
    bool verify_failed() const { return verify_ok.has_value() && !*verify_ok; }
};

std::string to_json_text(const BackupInfo& info);
// Throws warden::Error naming the problem.
BackupInfo backup_info_from_json(const std::string& text);

// What a catalog folder holds: readable backups, and folders that are not (an interrupted
// run's ".partial-*" folder, a damaged backup.json), with the reason.
struct CatalogListing {
    std::vector<BackupInfo> backups;
    std::vector<std::pair<std::string, std::string>> unusable;  // folder name, reason
};

inline constexpr const char* kDescriptionFile = "backup.json";
inline constexpr const char* kPartialPrefix = ".partial-";

// backup.json's text as found in the folder FOLDER_NAME; throws warden::Error when it
// is unreadable or names another backup (a copied or planted description).
BackupInfo description_for_folder(const std::string& folder_name, const std::string& text);
// Backups oldest first (by finish time, then ID), unusable folders by name.
void sort_listing(CatalogListing& listing);

// A backup ID is a UTC timestamp, "20261123T031500Z", with "-N" appended on collision.
std::string make_backup_id(std::time_t now);
bool valid_backup_id(const std::string& id);

std::string iso8601_utc(std::time_t t);
std::optional<std::time_t> parse_iso8601_utc(const std::string& text);

}  // namespace warden
