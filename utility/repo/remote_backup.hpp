// Backups in a remote repository (s3://...): each command works on a local stand-in for
// the repository, so the backup code itself never knows where the catalog lives.
//
//   create   the backup is made in a scratch folder, then uploaded: every file, and
//            backup.json last. A backup is listed only once its backup.json exists, so an
//            interrupted upload is never listed; what it uploaded is deleted on failure
//            and, if that failed too, by the next `backup prune`.
//   list, prune, verify, restore, drill   bring backup.json files (or one whole backup)
//            into the scratch folder first.
//
// For a local --dir every operation is a no-op and local() is --dir itself.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backup_catalog.hpp"
#include "repository.hpp"
#include "retention.hpp"

namespace warden::repo {

class Staging {
public:
    explicit Staging(const std::string& dir);

    bool remote() const { return repo_ != nullptr; }
    // Where the backup code reads and writes: --dir, or the scratch folder.
    const std::string& local() const { return local_; }
    Repository& repository() { return *repo_; }

    // Remote: fails early with the store's reason (wrong credentials, no bucket).
    void check_access();
    // Remote: every backup.json into local()/ID/.
    void fetch_catalog();
    // Remote: the whole backup ID into local()/ID/; unknown IDs throw like load_backup.
    void fetch(const std::string& id);
    // Remote: one file of backup ID into local()/ID/NAME (the folder made by
    // fetch_catalog); a missing object throws, naming it.
    void fetch_file(const std::string& id, const std::string& name);
    // Remote: uploads local()/ID, backup.json last; on failure deletes what it uploaded.
    void publish(const std::string& id);
    // Remote: uploads local()/ID/backup.json again (after verify recorded its result).
    void publish_description(const std::string& id);
    // Remote: deletes backup ID, backup.json first so it leaves the catalog at once.
    void remove_backup(const std::string& id);
    // Remote: backups without backup.json (uploads that failed) and incomplete multipart
    // uploads, each with its newest object's age in seconds.
    struct Partial {
        std::string id;
        long age_seconds = 0;
        std::size_t objects = 0;
        std::size_t uploads = 0;
        std::string reason;  // for list and prune
    };
    std::vector<Partial> partial_backups();
    // Aborts ID's unfinished multipart uploads and, unless it has a backup.json (a complete
    // backup with a stray upload), deletes its objects.
    void remove_partial(const std::string& id);

private:
    std::unique_ptr<Repository> repo_;
    std::unique_ptr<Scratch> scratch_;
    std::string local_;
};

// How old a partial remote backup must be before prune takes it for abandoned: a backup
// running elsewhere has its newest part younger than this. WARDEN_S3_ABANDONED_AFTER
// (seconds, default 3600).
long abandoned_after_seconds();

// `warden backup prune` of the bucket's wal/: the same plan as for a folder
// (core/wal_retention), objects deleted instead of files.
nlohmann::json prune_remote_wal(Repository& repo, const CatalogListing& listing,
                                const std::vector<RetentionDecision>& decisions, bool dry_run, bool json);

}  // namespace warden::repo
