#include "remote_wal.hpp"

#include <algorithm>
#include <ctime>
#include <optional>
#include <set>

#include "error.hpp"
#include "wal_backups.hpp"
#include "wal_names.hpp"

namespace warden::repo {

namespace fs = std::filesystem;

namespace {
constexpr const char* kWal = "wal/";

std::string stored_name(const std::string& name)
{
    auto kind = wal::classify(name);
    if (kind == wal::FileKind::segment || kind == wal::FileKind::partial_segment)
        return name + ".zst";
    if (kind == wal::FileKind::history || kind == wal::FileKind::backup_label)
        return name;
    throw Error(sqlstate::invalid_parameter_value,
                "\"" + name + "\" is not a WAL segment, timeline history or backup history file name");
}

// Uploads the files the local archive logic wrote into `dir` and that were not there
// before: archive.json and checksums first, data last.
void upload_new(Repository& repo, const fs::path& dir, const std::set<std::string>& before)
{
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string n = e.path().filename().string();
        if (!before.count(n) && e.is_regular_file() && n.find(".tmp.") == std::string::npos)
            names.push_back(n);
    }
    auto rank = [](const std::string& n) {
        if (n == "archive.json" || n == walarchive::kEncryptionFile)
            return 0;
        return n.size() > 7 && n.compare(n.size() - 7, 7, ".sha256") == 0 ? 1 : 2;
    };
    std::sort(names.begin(), names.end(),
              [&](const std::string& a, const std::string& b) { return std::make_pair(rank(a), a) < std::make_pair(rank(b), b); });
    for (const auto& n : names)
        repo.upload(kWal + n, dir / n);
}
}  // namespace

walarchive::PushOutcome wal_push(Repository& repo, const fs::path& source)
{
    std::string name = source.filename().string();
    std::string stored = stored_name(name);
    Scratch scratch;
    walarchive::Archive archive(scratch.path());
    std::set<std::string> before;
    for (const std::string& n : {std::string("archive.json"), std::string(walarchive::kEncryptionFile),
                                 stored + ".sha256", stored})
        if (repo.download(kWal + n, archive.dir() / n))
            before.insert(n);
    // The first encrypted push: the scratch holds one name only, so the bucket is asked
    // whether the archive already holds files (that would stay in the clear).
    if (walarchive::encryption_requested() && !before.count(walarchive::kEncryptionFile))
        for (const auto& o : repo.list(kWal)) {
            if (walarchive::is_stored_wal_file(o.key.substr(std::char_traits<char>::length(kWal))))
                throw Error(sqlstate::object_not_in_prerequisite_state,
                            "the WAL archive " + repo.describe() +
                                "/wal already holds unencrypted files: start an encrypted archive in a new prefix");
        }
    // A checksum without its data is what an interrupted push leaves: push again.
    if (before.count(stored + ".sha256") && !before.count(stored)) {
        fs::remove(archive.dir() / (stored + ".sha256"));
        before.erase(stored + ".sha256");
    }
    try {
        auto outcome = archive.push(source);
        upload_new(repo, archive.dir(), before);
        return outcome;
    } catch (const Error&) {
        // A conflicting copy is kept aside in the bucket as it would be on disk.
        upload_new(repo, archive.dir(), before);
        throw;
    }
}

walarchive::PushOutcome wal_push_bytes(Repository& repo, const std::string& name, const std::string& bytes)
{
    stored_name(name);  // refuses a name that is not WAL before anything is written
    Scratch scratch;
    walarchive::write_file_durably(scratch.path(), name, bytes);
    return wal_push(repo, scratch.path() / name);
}

walarchive::ArchiveStatus wal_status(Repository& repo)
{
    auto objects = repo.list(kWal);
    if (objects.empty())
        throw walarchive::NotArchive("no WAL archive at " + repo.describe() + "/wal");
    std::optional<std::uint64_t> seg;
    if (auto text = repo.read(std::string(kWal) + "archive.json", 1 << 20)) {
        Scratch scratch;
        walarchive::Archive archive(scratch.path());
        walarchive::write_file_durably(archive.dir(), "archive.json", *text);
        seg = archive.segment_size();
    }
    walarchive::ArchiveStatus st;
    std::optional<wal::SegmentId> newest;
    std::time_t newest_modified = 0;
    for (const auto& o : objects) {
        std::string n = o.key.substr(std::char_traits<char>::length(kWal));
        if (n.find('/') != std::string::npos)
            continue;
        st.stored_bytes += o.size;
        bool checksum = n.size() > 7 && n.compare(n.size() - 7, 7, ".sha256") == 0;
        if (n.find(".conflict-") != std::string::npos && !checksum)
            ++st.conflicts;
        if (n.size() != 28 || n.compare(24, 4, ".zst") != 0 || wal::classify(n.substr(0, 24)) != wal::FileKind::segment)
            continue;
        ++st.segments;
        auto id = wal::parse_segment_name(n.substr(0, 24), seg.value_or(16u << 20));
        if (id && (!newest || id->segno > newest->segno || (id->segno == newest->segno && id->tli > newest->tli))) {
            newest = id;
            st.newest_segment = n.substr(0, 24);
            newest_modified = o.modified;
        }
    }
    if (newest)
        st.newest_age_seconds = std::max<std::int64_t>(0, std::time(nullptr) - newest_modified);
    return st;
}

void wal_fetch(Repository& repo, const std::string& name, const fs::path& dest)
{
    std::string stored = stored_name(name);
    Scratch scratch;
    walarchive::Archive archive(scratch.path());
    repo.download(std::string(kWal) + "archive.json", archive.dir() / "archive.json");
    repo.download(std::string(kWal) + walarchive::kEncryptionFile, archive.dir() / walarchive::kEncryptionFile);
    // A wrong or missing key stops recovery, also for a file that is not archived.
    archive.unlock();
    if (!repo.download(kWal + stored, archive.dir() / stored))
        throw walarchive::NotFound(name + " is not in the archive " + repo.describe() + "/wal");
    repo.download(kWal + stored + ".sha256", archive.dir() / (stored + ".sha256"));
    archive.fetch(name, dest);
}

void fetch_catalog(Repository& repo, const fs::path& scratch)
{
    for (const auto& o : repo.list("")) {
        auto slash = o.key.find('/');
        if (slash == std::string::npos || o.key.substr(slash) != "/backup.json")
            continue;
        std::string id = o.key.substr(0, slash);
        if (id == "wal")
            continue;
        fs::create_directory(scratch / id);
        fs::permissions(scratch / id, fs::perms::owner_all, fs::perm_options::replace);
        repo.download(o.key, scratch / id / "backup.json");
    }
}

RemoteVerify wal_verify(Repository& repo)
{
    Scratch scratch;
    auto objects = repo.list(kWal);
    if (objects.empty())
        throw walarchive::NotArchive("no WAL archive at " + repo.describe() + "/wal");
    walarchive::Archive archive(scratch.path());
    for (const auto& o : objects) {
        std::string n = o.key.substr(std::char_traits<char>::length(kWal));
        if (n.empty() || n.find('/') != std::string::npos)
            continue;
        repo.download(o.key, archive.dir() / n);
    }
    fetch_catalog(repo, scratch.path());
    RemoteVerify out;
    auto starts = walbackups::kept_backup_starts(scratch.path());
    out.backups_checked = starts.size();
    out.report = archive.verify(starts);
    return out;
}

}  // namespace warden::repo
