#include "backup_check.hpp"

#include <algorithm>

#include "backup_paths.hpp"
#include "error.hpp"
#include "lsn.hpp"

namespace warden {

namespace {
constexpr const char* kWalDir = "pg_wal/";
constexpr const char* kTablespaceDir = "pg_tblspc/";

[[noreturn]] void corrupt(const std::string& file, const std::string& what)
{
    throw Error("XX001", printable(file) + ": " + what);
}
}  // namespace

bool is_wal_segment_name(const std::string& name)
{
    return name.size() == 24 && std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
           });
}

BackupContentCheck::BackupContentCheck(const BackupManifest& manifest,
                                       const std::vector<CatalogFile>* wal_expected)
    : manifest_(manifest), wal_expected_(wal_expected)
{
}

std::string BackupContentCheck::data_path(const std::string& oid, const std::string& member)
{
    return oid.empty() ? member : "pg_tblspc/" + oid + "/" + member;
}

void BackupContentCheck::admit(const std::string& oid, const TarMember& m)
{
    if (std::string why = member_path_problem(m.path); !why.empty()) {
        bool escapes = !m.path.empty() && (m.path.front() == '/' || why.find("\"..\"") != std::string::npos);
        corrupt(data_path(oid, m.path), "member name " + why +
                                            (escapes ? ": it would be written outside the target directory" : "") +
                                            "; refusing");
    }
    std::string path = data_path(oid, m.path);
    // Data behind a directory or a link would be skipped unread: decompressed for nothing.
    if ((m.type == 'd' || m.type == 'l') && m.size != 0)
        corrupt(path, std::string(m.type == 'd' ? "a directory" : "a symbolic link") + " with " +
                          std::to_string(m.size) + " bytes of data; refusing");
    switch (m.type) {
    case 'f':
        break;
    case 'd':
        return;
    case 'l':
        // The server writes one link per tablespace; restore makes its own.
        if (oid.empty() && path.rfind(kTablespaceDir, 0) == 0 &&
            tablespace_oid_problem(path.substr(std::string(kTablespaceDir).size())).empty())
            return;
        corrupt(path, "a symbolic link outside pg_tblspc/OID (to " + printable(m.link) + "); refusing");
    case 'h':
        corrupt(path, "a hard link (to " + printable(m.link) + "); refusing");
    default:
        corrupt(path, "neither a file, a directory nor a tablespace link; refusing");
    }
    if (m.sparse)
        corrupt(path, "a sparse member (" + std::to_string(m.size) + " bytes with holes); refusing");
    if (!seen_.insert(path).second)
        corrupt(path, "appears twice in the archives");
    if (oid.empty() && path.rfind(kWalDir, 0) == 0) {
        // The server's manifest leaves out the WAL it appends; pg_warden lists it.
        if (!wal_expected_)
            return;
        std::string name = path.substr(std::string(kWalDir).size());
        auto it = std::find_if(wal_expected_->begin(), wal_expected_->end(),
                               [&](const CatalogFile& w) { return w.name == name; });
        if (it == wal_expected_->end())
            corrupt(path, "not recorded in backup.json");
        if (it->size != m.size)
            corrupt(path, "size " + std::to_string(m.size) + " differs from backup.json's " + std::to_string(it->size));
        return;
    }
    const ManifestFile* mf = manifest_.find(path);
    if (!mf)
        corrupt(path, "is in the archive but not in backup_manifest");
    if (mf->size != m.size)
        corrupt(path, "size " + std::to_string(m.size) + " differs from backup_manifest's " +
                          std::to_string(mf->size));
}

void BackupContentCheck::check_content(const std::string& oid, const TarMember& m)
{
    if (m.type != 'f')
        return;
    std::string path = data_path(oid, m.path);
    if (oid.empty() && path.rfind(kWalDir, 0) == 0) {
        CatalogFile f{path.substr(std::string(kWalDir).size()), m.size, m.sha256};
        if (wal_expected_) {
            auto it = std::find_if(wal_expected_->begin(), wal_expected_->end(),
                                   [&](const CatalogFile& w) { return w.name == f.name; });
            if (it->sha256 != f.sha256)
                corrupt(path, "checksum mismatch (recorded " + it->sha256 + ", found " + f.sha256 + ")");
        }
        wal_found_.push_back(std::move(f));
        return;
    }
    const ManifestFile* mf = manifest_.find(path);
    if (mf->checksum_algorithm == "SHA256" && mf->checksum != m.sha256)
        corrupt(path, "checksum mismatch with backup_manifest (recorded " + mf->checksum +
                          ", found " + m.sha256 + ")");
}

void BackupContentCheck::check(const std::string& oid, const TarMember& m)
{
    admit(oid, m);
    check_content(oid, m);
}

void BackupContentCheck::finish()
{
    for (const auto& f : manifest_.files())
        if (!seen_.count(f.path))
            corrupt(f.path, "listed in backup_manifest but missing from the archives");
    if (wal_expected_)
        for (const auto& w : *wal_expected_)
            if (!seen_.count(kWalDir + w.name))
                corrupt(kWalDir + w.name, "recorded in backup.json but missing from the archive");
}

std::uint64_t check_wal_range(const BackupManifest& manifest, const std::vector<CatalogFile>& wal)
{
    std::uint64_t segsize = 0;
    std::set<std::string> names;
    for (const auto& w : wal)
        if (is_wal_segment_name(w.name)) {
            names.insert(w.name);
            if (segsize == 0)
                segsize = w.size;
        }
    if (manifest.wal_ranges().empty())
        throw Error("XX001", "backup_manifest lists no WAL range");
    if (segsize == 0 || (segsize & (segsize - 1)) != 0)
        throw Error("XX001", "the backup holds no WAL segment",
                    "The backup cannot reach consistency without the WAL written while it ran.");
    for (const auto& r : manifest.wal_ranges()) {
        Lsn last = r.end_lsn > r.start_lsn ? r.end_lsn - 1 : r.end_lsn;
        for (Lsn lsn = r.start_lsn - r.start_lsn % segsize; lsn <= last; lsn += segsize) {
            std::string name = wal_segment_name(r.timeline, lsn, segsize);
            if (!names.count(name))
                throw Error("XX001", "WAL segment " + name + " needed from " +
                                         format_lsn(r.start_lsn) + " to " + format_lsn(r.end_lsn) +
                                         " is missing from the backup");
        }
    }
    return segsize;
}

}  // namespace warden
