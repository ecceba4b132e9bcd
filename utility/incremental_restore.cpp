#include "incremental_restore.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include "backup_chain.hpp"
#include "backup_check.hpp"
#include "backup_common.hpp"
#include "backup_incremental.hpp"
#include "backup_key.hpp"
#include "backup_paths.hpp"
#include "block_map.hpp"
#include "catalog_files.hpp"
#include "error.hpp"
#include "fs/extract.hpp"
#include "fs/safe_file.hpp"
#include "progress.hpp"
#include "tar_members.hpp"

namespace warden {

namespace {

constexpr const char* kManifestName = "backup_manifest";
constexpr const char* kControlFile = "global/pg_control";
constexpr const char* kControlFileWhileRestoring = "global/pg_control.warden-restoring";
constexpr std::size_t kMaxBlockMapBytes = std::size_t{1} << 30;

bool is_blocks_archive(const std::string& name) { return is_archive_name(name, "blocks"); }

const CatalogFile* stored(const BackupInfo& info, const std::string& name)
{
    for (const auto& f : info.files)
        if (f.name == name)
            return &f;
    return nullptr;
}

// One incremental link, read and checked before anything of it is applied.
struct Link {
    const BackupInfo* info = nullptr;
    std::string path;
    BackupManifest manifest;
    BlockMap map;
    std::string blocks_archive;
};

[[noreturn]] void damaged(const BackupInfo& info, const std::string& what)
{
    throw Error("XX001", "backup " + info.id + ": " + what);
}

// An incremental backup holds what a full one does plus blocks.tar and incremental.json;
// its tablespaces are those of its parent (a new tablespace needs a full backup).
Link open_link(const std::string& dir, const BackupInfo& info, const BackupInfo& parent)
{
    Link link;
    link.info = &info;
    link.path = dir + "/" + info.id;
    BackupInfo rest = info;
    rest.files.clear();
    for (const auto& f : info.files) {
        if (is_blocks_archive(f.name)) {
            if (!link.blocks_archive.empty())
                damaged(info, "more than one blocks archive");
            link.blocks_archive = f.name;
        } else if (f.name != kBlockMapFile) {
            rest.files.push_back(f);
        }
    }
    const CatalogFile* map_file = stored(info, kBlockMapFile);
    if (link.blocks_archive.empty() || !map_file)
        damaged(info, "an incremental backup needs blocks.tar[.gz|.zst] and incremental.json");
    check_physical_layout(rest);
    std::set<std::string> mine, theirs;
    for (const auto& t : info.tablespaces)
        mine.insert(t.oid);
    for (const auto& t : parent.tablespaces)
        theirs.insert(t.oid);
    if (mine != theirs)
        damaged(info, "its tablespaces differ from its parent " + parent.id + "'s");

    link.manifest = read_backup_manifest(link.path, info);
    fs::Dir folder = fs::Dir::open_no_follow(link.path);
    std::optional<std::string> text = fs::read_small_file(folder, kBlockMapFile, kMaxBlockMapBytes);
    if (!text)
        damaged(info, "incremental.json is missing");
    if (text->size() != map_file->size || sha256_hex(*text) != map_file->sha256)
        damaged(info, "incremental.json: checksum mismatch with backup.json");
    link.map = block_map_from_json(*text);
    if (link.map.parent != parent.id)
        damaged(info, "incremental.json names parent " + link.map.parent + ", backup.json " + parent.id);
    for (const auto& f : link.map.files) {
        const ManifestFile* mf = link.manifest.find(f.path);
        if (!mf || mf->size != f.size)
            damaged(info, "incremental.json: " + printable(f.path) + " does not match backup_manifest");
    }
    return link;
}

// Where a data-directory path goes: the target, or a tablespace folder.
struct Places {
    RestoreDir* target = nullptr;
    const std::map<std::string, RestoreDir*>* tablespaces = nullptr;

    std::pair<RestoreDir*, std::string> locate(const std::string& path) const
    {
        static const std::string prefix = "pg_tblspc/";
        if (path.rfind(prefix, 0) == 0) {
            std::size_t slash = path.find('/', prefix.size());
            if (slash != std::string::npos) {
                auto it = tablespaces->find(path.substr(prefix.size(), slash - prefix.size()));
                if (it != tablespaces->end())
                    return {it->second, path.substr(slash + 1)};
            }
        }
        return {target, path == kControlFile ? kControlFileWhileRestoring : path};
    }
};

// Reads one link: its archives (whole files) and its blocks. With PLACES, writes them
// over the restored parent; without, only checks. PRESENT: the data paths the parent
// state has, replaced by this link's on return; WAL likewise.
void apply_link(const Link& link, const Places* places, std::set<std::string>& present,
                std::vector<CatalogFile>& wal, Progress& progress, std::uint64_t& done)
{
    const BackupInfo& info = *link.info;
    BackupContentCheck check(link.manifest, &info.wal);
    std::set<std::string> seen;
    for (const auto& f : info.files) {
        if (f.name == kManifestName || f.name == kBlockMapFile || f.name == link.blocks_archive)
            continue;
        std::string oid;
        for (const auto& t : info.tablespaces)
            if (t.archive == f.name)
                oid = t.oid;
        RestoreDir* dir = nullptr;
        if (places)
            dir = oid.empty() ? places->target : places->tablespaces->at(oid);
        ArchiveFileReader reader(link.path + "/" + f.name, f.size);
        try {
            reader.for_each([&](archive_entry* entry) {
                TarMember m = describe_entry(entry);
                check.admit(oid, m);
                std::string path = BackupContentCheck::data_path(oid, m.path);
                if (m.type == 'l') {
                    bool listed = std::any_of(info.tablespaces.begin(), info.tablespaces.end(), [&](const auto& t) {
                        return "pg_tblspc/" + t.oid == m.path;
                    });
                    if (!listed)
                        damaged(info, m.path + " links to a tablespace backup.json does not list; refusing");
                    return;
                }
                if (m.type == 'd') {
                    if (dir)
                        dir->make_directory(m.path);
                    return;
                }
                if (link.map.find(path))
                    damaged(info, printable(path) + " is both in an archive and in incremental.json");
                seen.insert(path);
                if (dir) {
                    std::string rel = (oid.empty() && m.path == kControlFile) ? kControlFileWhileRestoring : m.path;
                    dir->remove_file(rel);
                    RestoreFile out = dir->create_file(rel);
                    m.sha256 = hash_entry_data(reader.get(), m, [&](const void* buf, std::size_t len, std::int64_t off) {
                        out.write(buf, len, off);
                    });
                    out.finish(m.size, m.mtime);
                } else {
                    m.sha256 = hash_entry_data(reader.get(), m);
                }
                check.check_content(oid, m);
                done += m.size;
                progress.update(done, 0);
            });
        } catch (const Error& e) {
            if (std::string(e.what()).rfind("backup ", 0) == 0)
                throw;
            damaged(info, f.name + ": " + e.what());
        }
        if (reader.file_sha256() != f.sha256)
            damaged(info, f.name + ": checksum mismatch with backup.json");
    }
    // Every file of the link: whole in an archive, or blocks on top of the parent's copy.
    for (const auto& mf : link.manifest.files())
        if (!seen.count(mf.path) && !link.map.find(mf.path))
            damaged(info, printable(mf.path) + " is listed in backup_manifest but in neither an archive nor incremental.json");
    for (const auto& w : info.wal)
        if (!std::any_of(check.wal_found().begin(), check.wal_found().end(),
                         [&](const CatalogFile& f) { return f.name == w.name; }))
            damaged(info, "pg_wal/" + w.name + " recorded in backup.json but missing from the archive");
    for (const auto& bf : link.map.files)
        if (!present.count(bf.path))
            damaged(info, printable(bf.path) + ": incremental.json patches a file the parent does not have");

    // The blocks, in the order incremental.json lists them.
    std::size_t file = 0, pos = 0;
    auto skip_done = [&] {
        while (file < link.map.files.size() && pos >= link.map.files[file].blocks.size()) {
            ++file;
            pos = 0;
        }
    };
    skip_done();
    std::unique_ptr<RestoreFile> open;
    std::size_t open_index = SIZE_MAX;
    ArchiveFileReader reader(link.path + "/" + link.blocks_archive, stored(info, link.blocks_archive)->size);
    try {
        reader.for_each([&](archive_entry* entry) {
            TarMember m = describe_entry(entry);
            std::size_t index = 0;
            std::uint64_t blkno = 0;
            if (m.type != 'f' || m.sparse || !parse_block_member_name(m.path, index, blkno))
                damaged(info, link.blocks_archive + ": unexpected member \"" + printable(m.path) + "\"");
            if (file >= link.map.files.size() || index != file || blkno != link.map.files[file].blocks[pos])
                damaged(info, link.blocks_archive + ": block " + printable(m.path) +
                                  " is not the next one incremental.json lists");
            const BlockFile& bf = link.map.files[file];
            std::uint64_t expected = std::min<std::uint64_t>(kBlockSize, bf.size - blkno * kBlockSize);
            if (m.size != expected)
                damaged(info, bf.path + " block " + std::to_string(blkno) + ": " + std::to_string(m.size) +
                                  " bytes, expected " + std::to_string(expected));
            std::string data;
            data.reserve(m.size);
            std::string sha = hash_entry_data(reader.get(), m, [&](const void* buf, std::size_t len, std::int64_t) {
                data.append(static_cast<const char*>(buf), len);
            });
            if (sha != bf.sha256[pos])
                damaged(info, bf.path + " block " + std::to_string(blkno) + ": checksum mismatch (recorded " +
                                  bf.sha256[pos] + ", found " + sha + ")");
            if (places) {
                if (open_index != file) {
                    if (open)
                        open->resize_and_close(link.map.files[open_index].size);
                    auto [dir, rel] = places->locate(bf.path);
                    open = std::make_unique<RestoreFile>(dir->reopen_file(rel));
                    open_index = file;
                }
                open->write_at(data.data(), data.size(), static_cast<std::int64_t>(blkno * kBlockSize));
            }
            done += m.size;
            progress.update(done, 0);
            ++pos;
            skip_done();
        });
    } catch (const Error& e) {
        if (std::string(e.what()).rfind("backup ", 0) == 0)
            throw;
        damaged(info, link.blocks_archive + ": " + e.what());
    }
    if (file < link.map.files.size())
        damaged(info, link.blocks_archive + ": block " + std::to_string(link.map.files[file].blocks[pos]) + " of " +
                          link.map.files[file].path + " is missing");
    if (reader.file_sha256() != stored(info, link.blocks_archive)->sha256)
        damaged(info, link.blocks_archive + ": checksum mismatch with backup.json");

    if (places) {
        if (open)
            open->resize_and_close(link.map.files[open_index].size);
        // Main forks without a changed block may still have shrunk (VACUUM truncation).
        for (std::size_t i = 0; i < link.map.files.size(); ++i) {
            if (i == open_index || !link.map.files[i].blocks.empty())
                continue;
            auto [dir, rel] = places->locate(link.map.files[i].path);
            dir->reopen_file(rel).resize_and_close(link.map.files[i].size);
        }
        // What the parent had and this link does not: dropped, truncated away, moved.
        for (const auto& path : present)
            if (!link.manifest.find(path)) {
                auto [dir, rel] = places->locate(path);
                dir->remove_file(rel);
            }
        for (const auto& w : wal)
            if (!std::any_of(info.wal.begin(), info.wal.end(), [&](const CatalogFile& x) { return x.name == w.name; }))
                places->target->remove_file("pg_wal/" + w.name);
    }
    present.clear();
    for (const auto& mf : link.manifest.files())
        present.insert(mf.path);
    wal = info.wal;
}

struct Chain {
    CatalogListing listing;  // owns what the pointers point at
    std::vector<const BackupInfo*> backups;
    std::vector<Link> links;  // backups[1..]
};

std::unique_ptr<Chain> open_chain(const std::string& dir, const std::string& id)
{
    auto c = std::make_unique<Chain>();
    c->listing = load_catalog(dir);
    c->backups = resolve_chain(c->listing.backups, id);
    for (std::size_t i = 1; i < c->backups.size(); ++i)
        c->links.push_back(open_link(dir, *c->backups[i], *c->backups[i - 1]));
    return c;
}

std::set<std::string> manifest_paths(const BackupManifest& m)
{
    std::set<std::string> out;
    for (const auto& f : m.files())
        out.insert(f.path);
    return out;
}

}  // namespace

RestoreReport restore_backup_chain(const std::string& dir, const BackupInfo& backup, const PhysicalRestoreOptions& opts)
{
    require_backup_key(backup);
    if (backup.parent.empty())
        return restore_physical_backup(dir + "/" + backup.id, backup, opts);
    auto chain = open_chain(dir, backup.id);
    for (const BackupInfo* b : chain->backups)
        require_backup_key(*b);
    const BackupInfo& full = *chain->backups.front();
    std::string full_path = dir + "/" + full.id;
    std::set<std::string> present = manifest_paths(read_backup_manifest(full_path, full));
    std::vector<CatalogFile> wal = full.wal;
    std::uint64_t applied = 0;

    PhysicalRestoreOptions o = opts;
    o.restored_id = backup.id;
    o.apply_chain = [&](RestoreDir& target, const std::map<std::string, RestoreDir*>& tablespaces) {
        Places places{&target, &tablespaces};
        Progress progress("apply", opts.quiet);
        for (const auto& link : chain->links)
            apply_link(link, &places, present, wal, progress, applied);
        progress.clear();
    };
    RestoreReport r = restore_physical_backup(full_path, full, o);
    r.bytes += applied;
    return r;
}

void verify_backup_chain(const std::string& dir, const BackupInfo& backup, bool quiet)
{
    require_backup_key(backup);
    if (backup.parent.empty()) {
        verify_physical_backup(dir + "/" + backup.id, backup, quiet);
        return;
    }
    auto chain = open_chain(dir, backup.id);
    for (const BackupInfo* b : chain->backups)
        require_backup_key(*b);
    const BackupInfo& full = *chain->backups.front();
    try {
        verify_physical_backup(dir + "/" + full.id, full, quiet);
    } catch (const Error& e) {
        throw Error("XX001", "backup " + full.id + " (the full backup of the chain): " + e.what());
    }
    std::set<std::string> present = manifest_paths(read_backup_manifest(dir + "/" + full.id, full));
    std::vector<CatalogFile> wal = full.wal;
    Progress progress("verify", quiet);
    std::uint64_t done = 0;
    for (const auto& link : chain->links) {
        apply_link(link, nullptr, present, wal, progress, done);
    }
    progress.clear();
}

}  // namespace warden
