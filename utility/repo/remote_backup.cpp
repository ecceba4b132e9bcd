#include "remote_backup.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "backup_common.hpp"
#include "error.hpp"
#include "remote_wal.hpp"
#include "wal_archive.hpp"
#include "wal_retention.hpp"

namespace warden::repo {

namespace fs = std::filesystem;

namespace {

// Runs fn over items on a few threads; the first exception stops the rest and is rethrown.
template <typename T, typename Fn>
void parallel_each(const std::vector<T>& items, int jobs, Fn fn)
{
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex m;
    std::exception_ptr first;
    auto worker = [&] {
        for (;;) {
            std::size_t i = next++;
            if (i >= items.size() || failed)
                return;
            try {
                fn(items[i]);
            } catch (...) {
                std::lock_guard<std::mutex> lock(m);
                if (!first)
                    first = std::current_exception();
                failed = true;
            }
        }
    };
    std::vector<std::thread> threads;
    int n = static_cast<int>(std::min<std::size_t>(items.size(), static_cast<std::size_t>(std::max(jobs, 1))));
    for (int t = 0; t < n; ++t)
        threads.emplace_back(worker);
    for (auto& t : threads)
        t.join();
    if (first)
        std::rethrow_exception(first);
}

int transfer_jobs()
{
    const char* v = std::getenv("WARDEN_S3_JOBS");
    int n = v ? std::atoi(v) : 4;
    return n >= 1 && n <= 64 ? n : 4;
}

bool valid_id(const std::string& id)
{
    return !id.empty() && id != "." && id != ".." && id != "wal" && id.find('/') == std::string::npos &&
           id[0] != '.';
}
}  // namespace

long abandoned_after_seconds()
{
    const char* v = std::getenv("WARDEN_S3_ABANDONED_AFTER");
    if (!v || !*v)
        return 3600;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end || n < 0)
        throw Error(sqlstate::invalid_parameter_value, "WARDEN_S3_ABANDONED_AFTER must be a number of seconds");
    return n;
}

Staging::Staging(const std::string& dir)
{
    if (!is_remote(dir)) {
        local_ = dir;
        return;
    }
    repo_ = open_repository(dir);
    scratch_ = std::make_unique<Scratch>();
    local_ = scratch_->path().string();
}

void Staging::check_access()
{
    if (remote())
        repo_->list("wal/archive.json");
}

void Staging::fetch_catalog()
{
    if (remote())
        repo::fetch_catalog(*repo_, local_);
}

void Staging::fetch(const std::string& id)
{
    if (!remote())
        return;
    if (!valid_id(id))
        throw Error(sqlstate::invalid_parameter_value, "unknown backup ID \"" + id + "\"");
    auto objects = repo_->list(id + "/");
    bool described = std::any_of(objects.begin(), objects.end(),
                                 [&](const ObjectInfo& o) { return o.key == id + "/" + kDescriptionFile; });
    if (!described)
        throw Error(sqlstate::invalid_parameter_value,
                    "unknown backup ID \"" + id + "\" in " + repo_->describe());
    fs::path root = fs::path(local_) / id;
    // Folders first, made private like the backup code's own.
    for (const auto& o : objects) {
        fs::path p = fs::path(local_) / o.key;
        fs::create_directories(p.parent_path());
    }
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
        if (it->is_directory())
            fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::replace);
    fs::permissions(root, fs::perms::owner_all, fs::perm_options::replace);
    parallel_each(objects, transfer_jobs(), [&](const ObjectInfo& o) {
        throw_if_interrupted();
        repo_->download(o.key, fs::path(local_) / o.key);
    });
}

void Staging::fetch_file(const std::string& id, const std::string& name)
{
    if (!remote())
        return;
    if (!valid_id(id))
        throw Error(sqlstate::invalid_parameter_value, "unknown backup ID \"" + id + "\"");
    fs::path dest = fs::path(local_) / id;
    fs::create_directories(dest);
    fs::permissions(dest, fs::perms::owner_all, fs::perm_options::replace);
    if (!repo_->download(id + "/" + name, dest / name))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "backup " + id + " has no " + name + " in " + repo_->describe(), {},
                    "warden backup verify --dir " + repo_->describe() + " " + id + " checks the whole backup.");
}

void Staging::publish(const std::string& id)
{
    if (!remote())
        return;
    fs::path root = fs::path(local_) / id;
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
        if (it->is_regular_file() && !it->is_symlink())
            files.push_back(fs::relative(it->path(), root).string());
    // Biggest first: the long multipart uploads start while small files fill the gaps.
    std::sort(files.begin(), files.end(), [&](const std::string& a, const std::string& b) {
        return fs::file_size(root / a) > fs::file_size(root / b);
    });
    files.erase(std::remove(files.begin(), files.end(), kDescriptionFile), files.end());
    try {
        parallel_each(files, transfer_jobs(), [&](const std::string& f) {
            throw_if_interrupted();
            repo_->upload(id + "/" + f, root / f);
        });
        // The catalog entry last: before it exists, nothing lists this backup.
        repo_->upload(id + "/" + kDescriptionFile, root / kDescriptionFile);
    } catch (...) {
        try {
            remove_partial(id);
        } catch (const std::exception& e) {
            std::fprintf(stderr,
                         "warden: could not delete the partial upload %s/%s (backup prune will): %s\n",
                         repo_->describe().c_str(), id.c_str(), e.what());
        }
        throw;
    }
}

void Staging::publish_description(const std::string& id)
{
    if (remote())
        repo_->upload(id + "/" + kDescriptionFile, fs::path(local_) / id / kDescriptionFile);
}

void Staging::remove_backup(const std::string& id)
{
    if (!remote())
        return;
    repo_->remove(id + "/" + kDescriptionFile);
    remove_partial(id);
}

std::vector<Staging::Partial> Staging::partial_backups()
{
    std::vector<Partial> out;
    if (!remote())
        return out;
    std::map<std::string, Partial> by_id;
    std::map<std::string, bool> described;
    std::time_t now = std::time(nullptr);
    auto note = [&](const std::string& key, std::time_t t, bool upload) {
        auto slash = key.find('/');
        if (slash == std::string::npos)
            return;
        std::string id = key.substr(0, slash);
        if (!valid_id(id))
            return;
        auto& p = by_id[id];
        p.id = id;
        long age = static_cast<long>(now - t);
        p.age_seconds = (p.objects + p.uploads == 0) ? age : std::min(p.age_seconds, age);
        (upload ? p.uploads : p.objects)++;
        if (key == id + "/" + kDescriptionFile)
            described[id] = true;
    };
    for (const auto& o : repo_->list(""))
        note(o.key, o.modified, false);
    for (const auto& u : repo_->incomplete_uploads(""))
        note(u.key, u.initiated, true);
    for (auto& [id, p] : by_id) {
        if (!described[id])
            p.reason = "incomplete upload (no backup.json)";
        else if (p.uploads > 0)
            p.reason = "unfinished multipart upload";
        else
            continue;
        out.push_back(p);
    }
    return out;
}

void Staging::remove_partial(const std::string& id)
{
    if (!remote() || !valid_id(id))
        return;
    for (const auto& u : repo_->incomplete_uploads(id + "/"))
        repo_->abort_upload(u);
    auto objects = repo_->list(id + "/");
    for (const auto& o : objects)
        if (o.key == id + "/" + kDescriptionFile)
            return;
    parallel_each(objects, transfer_jobs(), [&](const ObjectInfo& o) { repo_->remove(o.key); });
}

nlohmann::json prune_remote_wal(Repository& repo, const CatalogListing& listing,
                                const std::vector<RetentionDecision>& decisions, bool dry_run, bool json)
{
    auto objects = repo.list("wal/");
    // A push cut off in a multipart upload (the store or the pusher died) leaves its parts
    // behind and nothing completes them: those older than WARDEN_S3_ABANDONED_AFTER are
    // aborted (a push in progress is younger; a later push of the file is an upload of
    // its own).
    std::vector<IncompleteUpload> stray;
    std::time_t now = std::time(nullptr);
    for (const auto& u : repo.incomplete_uploads("wal/"))
        if (now - u.initiated >= abandoned_after_seconds())
            stray.push_back(u);
    if (!dry_run)
        for (const auto& u : stray)
            repo.abort_upload(u);
    if (!stray.empty() && !json)
        std::printf("%-20s %-12s %zu unfinished multipart upload(s) of WAL\n", "wal",
                    dry_run ? "would abort" : "aborted", stray.size());
    if (objects.empty())
        return stray.empty() ? nlohmann::json(nullptr) : nlohmann::json{{"aborted_uploads", stray.size()}};
    Scratch scratch;
    walarchive::Archive archive(scratch.path());
    repo.download("wal/archive.json", archive.dir() / "archive.json");
    auto system = archive.system_identifier();
    std::vector<wal::KeptBackup> kept;
    for (const auto& d : decisions) {
        if (!d.keep)
            continue;
        for (const auto& b : listing.backups)
            if (b.id == d.id && b.kind == "physical" && !b.start_lsn.empty() && b.timeline > 0 &&
                (!system || b.system_identifier.empty() || b.system_identifier == *system))
                kept.push_back({b.id, b.timeline, wal::parse_lsn(b.start_lsn)});
    }
    std::vector<std::string> names;
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& o : objects) {
        std::string n = o.key.substr(4);
        if (n.find('/') != std::string::npos)
            continue;
        names.push_back(n);
        sizes[n] = o.size;
    }
    auto plan = wal::plan_wal_prune(names, kept, archive.segment_size());
    std::size_t files = 0;
    std::uint64_t bytes = 0;
    nlohmann::json ranges = nlohmann::json::array();
    for (const auto& r : plan.ranges) {
        std::vector<std::string> keys;
        for (const auto& f : r.files) {
            ++files;
            bytes += sizes[f];
            keys.push_back("wal/" + f);
        }
        if (!dry_run)
            parallel_each(keys, transfer_jobs(), [&](const std::string& k) { repo.remove(k); });
        if (json)
            ranges.push_back({{"first", r.first}, {"last", r.last}, {"files", r.files.size()}, {"reason", r.reason}});
        else
            std::printf("%-20s %-12s %zu files, %s .. %s: %s\n", "wal", dry_run ? "would delete" : "deleted",
                        r.files.size(), r.first.c_str(), r.last.c_str(), r.reason.c_str());
    }
    if (!json)
        std::printf("%-20s %-12s %s\n", "wal", "keep", plan.keep_reason.c_str());
    return {{"ranges", ranges},       {"files", files}, {"bytes", bytes}, {"keep_reason", plan.keep_reason},
            {"aborted_uploads", stray.size()}};
}

}  // namespace warden::repo
