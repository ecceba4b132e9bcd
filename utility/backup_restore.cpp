#include "backup_restore.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "backup_check.hpp"
#include "backup_common.hpp"
#include "backup_manifest.hpp"
#include "backup_paths.hpp"
#include "error.hpp"
#include "fs/extract.hpp"
#include "progress.hpp"
#include "recovery_settings.hpp"
#include "tar_members.hpp"

namespace fs = std::filesystem;

namespace warden {

namespace {

constexpr const char* kManifestName = "backup_manifest";
// pg_control is written under another name and renamed last: a restore that stops
// half-way (killed, power lost) leaves a directory no server will start.
constexpr const char* kControlFile = "global/pg_control";
constexpr const char* kControlFileWhileRestoring = "global/pg_control.warden-restoring";
// A manifest lists about 200 bytes per file: a larger one is not a manifest.
constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{1} << 30;

[[noreturn]] void bad_layout(const std::string& what)
{
    throw Error("XX001", "backup.json: " + what + "; refusing");
}

// Every name backup.json gives (stored files, tablespace OIDs, locations and archives)
// is checked before any of them becomes a path.
void check_backup_layout(const BackupInfo& info)
{
    std::set<std::string> oids;
    for (const auto& t : info.tablespaces) {
        if (std::string why = tablespace_oid_problem(t.oid); !why.empty())
            bad_layout("tablespace OID \"" + printable(t.oid) + "\" " + why);
        if (!oids.insert(t.oid).second)
            bad_layout("tablespace " + t.oid + " is listed twice");
        if (std::string why = location_problem(t.location); !why.empty())
            bad_layout("tablespace " + t.oid + ": location \"" + printable(t.location) + "\" " + why);
        if (!is_archive_name(t.archive, t.oid))
            bad_layout("tablespace " + t.oid + ": archive \"" + printable(t.archive) + "\" is not " + t.oid +
                       ".tar[.gz|.zst]");
    }
    std::set<std::string> names;
    bool base = false;
    for (const auto& f : info.files) {
        if (!names.insert(f.name).second)
            bad_layout("stored file \"" + printable(f.name) + "\" is listed twice");
        if (f.name == kManifestName)
            continue;
        if (is_archive_name(f.name, "base")) {
            if (base)
                bad_layout("more than one base archive");
            base = true;
            continue;
        }
        bool of_tablespace = std::any_of(info.tablespaces.begin(), info.tablespaces.end(),
                                         [&](const CatalogTablespace& t) { return t.archive == f.name; });
        if (!of_tablespace)
            bad_layout("stored file \"" + printable(f.name) + "\" belongs to no tablespace of the backup");
    }
    if (!base || !names.count(kManifestName))
        bad_layout("a physical backup needs base.tar[.gz|.zst] and backup_manifest");
    for (const auto& t : info.tablespaces)
        if (!names.count(t.archive))
            bad_layout("tablespace " + t.oid + ": archive " + t.archive + " is not among the stored files");
}

const CatalogFile& stored_file(const BackupInfo& info, const std::string& name)
{
    return *std::find_if(info.files.begin(), info.files.end(), [&](const CatalogFile& f) { return f.name == name; });
}

// Reads backup_manifest: a regular file of the recorded size, checked before reading.
std::string read_manifest_text(const std::string& backup_path, const BackupInfo& info)
{
    std::string path = backup_path + "/" + kManifestName;
    std::uint64_t expected = stored_file(info, kManifestName).size;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        throw Error("58030", "could not open \"" + path + "\": " + std::strerror(errno));
    std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        throw Error("XX001", "backup_manifest: not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) != expected || expected > kMaxManifestBytes)
        throw Error("XX001", "backup_manifest: size " + std::to_string(st.st_size) + " differs from the recorded " +
                                 std::to_string(expected) + " (truncated or damaged)");
    std::string text(static_cast<std::size_t>(expected), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::read(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw Error("58030", "could not read \"" + path + "\"");
        done += static_cast<std::size_t>(n);
    }
    return text;
}

BackupManifest load_manifest(const std::string& backup_path, const BackupInfo& info)
{
    std::string text = read_manifest_text(backup_path, info);
    try {
        return BackupManifest::parse(text);
    } catch (const Error& e) {
        throw Error("XX001", std::string("backup_manifest: ") + e.what(), e.detail());
    }
}

// The archives of a backup with the tablespace each belongs to ("" = base).
std::vector<std::pair<std::string, std::string>> archives_of(const BackupInfo& info)
{
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : info.files) {
        if (f.name == kManifestName)
            continue;
        std::string oid;
        for (const auto& t : info.tablespaces)
            if (t.archive == f.name)
                oid = t.oid;
        out.emplace_back(f.name, oid);
    }
    return out;
}

// The base archive's pg_tblspc/OID links stand for the tablespaces backup.json lists;
// restore makes its own, pointing at the checked locations.
void check_tablespace_link(const BackupInfo& info, const std::string& archive, const TarMember& m)
{
    std::string oid = m.path.substr(std::string("pg_tblspc/").size());
    bool listed = std::any_of(info.tablespaces.begin(), info.tablespaces.end(),
                              [&](const CatalogTablespace& t) { return t.oid == oid; });
    if (!listed)
        throw Error("XX001", archive + ": " + m.path + " links to a tablespace backup.json does not list; refusing");
}

std::string strip_trailing_slashes(std::string p)
{
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    return p;
}

// A path the operator typed: made absolute and normal (its ".." are the operator's).
std::string operator_path(const std::string& p)
{
    return strip_trailing_slashes(fs::absolute(p).lexically_normal().string());
}

// Where each tablespace goes: its original location unless mapped. None may hold or
// lie within the target or another tablespace.
std::map<std::string, std::pair<std::string, bool>> tablespace_destinations(const BackupInfo& info,
                                                                          const PhysicalRestoreOptions& opts,
                                                                          const std::string& target)
{
    std::map<std::string, std::pair<std::string, bool>> out;  // oid -> location, mapped
    for (const auto& [from, to] : opts.tablespace_map) {
        bool used = std::any_of(info.tablespaces.begin(), info.tablespaces.end(),
                                [&](const CatalogTablespace& t) { return from == t.oid || from == t.location; });
        if (!used)
            throw Error(sqlstate::invalid_parameter_value,
                        "--tablespace-mapping " + from + ": the backup has no such tablespace");
    }
    for (const auto& t : info.tablespaces) {
        std::string dest = t.location;
        bool mapped = false;
        for (const auto& [from, to] : opts.tablespace_map)
            if (from == t.oid || from == t.location) {
                dest = operator_path(to);
                mapped = true;
            }
        if (std::string why = location_problem(dest); !why.empty())
            throw Error(sqlstate::invalid_parameter_value, "tablespace " + t.oid + ": location \"" + printable(dest) +
                                                               "\" " + why);
        if (path_within(dest, target) || path_within(target, dest))
            throw Error(sqlstate::invalid_parameter_value,
                        "tablespace " + t.oid + ": location \"" + dest + "\" overlaps the target directory \"" +
                            target + "\"",
                        {}, "Map it elsewhere with --tablespace-mapping " + t.oid + "=NEWDIR.");
        for (const auto& [oid, other] : out)
            if (path_within(dest, other.first) || path_within(other.first, dest))
                throw Error(sqlstate::invalid_parameter_value,
                            "tablespaces " + oid + " and " + t.oid + " overlap (\"" + other.first + "\", \"" + dest +
                                "\")");
        out[t.oid] = {dest, mapped};
    }
    return out;
}

std::string real_path(const std::string& p)
{
    char buf[PATH_MAX];
    if (!::realpath(p.c_str(), buf))
        throw Error("58030", "could not resolve \"" + p + "\": " + std::strerror(errno));
    return buf;
}

}  // namespace

BackupManifest read_backup_manifest(const std::string& backup_path, const BackupInfo& info)
{
    return load_manifest(backup_path, info);
}

void check_physical_layout(const BackupInfo& info) { check_backup_layout(info); }

void verify_physical_backup(const std::string& backup_path, const BackupInfo& info, bool quiet)
{
    check_backup_layout(info);
    check_stored_files(backup_path, info);
    BackupManifest manifest = load_manifest(backup_path, info);
    BackupContentCheck check(manifest, &info.wal);
    Progress progress("verify", quiet);
    std::uint64_t done = 0;
    for (const auto& [name, oid] : archives_of(info)) {
        ArchiveFileReader reader(backup_path + "/" + name, stored_file(info, name).size);
        try {
            reader.for_each([&](archive_entry* entry) {
                TarMember m = describe_entry(entry);
                check.admit(oid, m);
                if (m.type == 'l')
                    check_tablespace_link(info, name, m);
                if (m.type == 'f') {
                    m.sha256 = hash_entry_data(reader.get(), m);
                    done += m.size;
                    progress.update(done, info.original_bytes);
                }
                check.check_content(oid, m);
            });
        } catch (const Error& e) {
            if (std::string(e.what()).rfind(name, 0) == 0 || e.sqlstate() == "XX001")
                throw;
            throw Error("XX001", name + ": " + e.what());
        }
    }
    progress.clear();
    check.finish();
}

RestoreReport restore_physical_backup(const std::string& backup_path, const BackupInfo& info,
                                      const PhysicalRestoreOptions& opts)
{
    if (opts.target.empty())
        throw Error(sqlstate::invalid_parameter_value, "--target is required for a physical backup");
    if (opts.standby && opts.primary_conninfo.empty())
        throw Error(sqlstate::invalid_parameter_value, "--standby needs --primary-conninfo");
    // Everything the backup folder says is checked before anything is created.
    check_backup_layout(info);
    RestoreReport report;
    report.target = operator_path(opts.target);
    auto destinations = tablespace_destinations(info, opts, report.target);
    BackupManifest manifest = load_manifest(backup_path, info);

    RestoreDir target(report.target, "target directory", true,
                      "Restore into a new or empty directory; pg_warden never overwrites a data directory.");
    std::map<std::string, std::unique_ptr<RestoreDir>> tablespaces;
    try {
        for (const auto& [oid, dest] : destinations) {
            const auto& [location, mapped] = dest;
            tablespaces[oid] = std::make_unique<RestoreDir>(
                location, "tablespace directory", mapped,
                "Map it elsewhere with --tablespace-mapping " + oid + "=NEWDIR.");
            report.tablespaces.emplace_back(oid, location);
        }
        // Checked again now that they exist, through any symbolic links on the way.
        std::string real_target = real_path(report.target);
        for (const auto& [oid, dir] : tablespaces) {
            std::string real = real_path(dir->path());
            if (path_within(real, real_target) || path_within(real_target, real))
                throw Error(sqlstate::invalid_parameter_value,
                            "tablespace " + oid + ": location \"" + dir->path() + "\" resolves to \"" + real +
                                "\", which overlaps the target directory");
        }

        BackupContentCheck check(manifest, &info.wal);
        Progress progress("restore", opts.quiet);
        bool control_held_back = false;
        for (const auto& [name, oid] : archives_of(info)) {
            RestoreDir& dir = oid.empty() ? target : *tablespaces.at(oid);
            ArchiveFileReader reader(backup_path + "/" + name, stored_file(info, name).size);
            reader.for_each([&](archive_entry* entry) {
                TarMember m = describe_entry(entry);
                // Name, type, holes and size, before a byte is read or written.
                check.admit(oid, m);
                if (m.type == 'l') {
                    check_tablespace_link(info, name, m);
                    return;
                }
                if (m.type == 'd') {
                    dir.make_directory(m.path);
                    return;
                }
                bool control = oid.empty() && m.path == kControlFile;
                RestoreFile out = dir.create_file(control ? kControlFileWhileRestoring : m.path);
                m.sha256 = hash_entry_data(reader.get(), m, [&](const void* buf, std::size_t len, std::int64_t off) {
                    out.write(buf, len, off);
                });
                out.finish(m.size, m.mtime);
                check.check_content(oid, m);
                control_held_back = control_held_back || control;
                report.bytes += m.size;
                ++report.files;
                progress.update(report.bytes, info.original_bytes);
            });
            if (reader.file_sha256() != stored_file(info, name).sha256)
                throw Error("XX001", name + ": checksum mismatch with backup.json");
        }
        progress.clear();
        check.finish();
        if (opts.apply_chain) {
            std::map<std::string, RestoreDir*> tbs;
            for (const auto& [oid, dir] : tablespaces)
                tbs[oid] = dir.get();
            opts.apply_chain(target, tbs);
        }

        for (const auto& [oid, dir] : tablespaces) {
            target.make_directory("pg_tblspc");
            target.make_symlink("pg_tblspc/" + oid, dir->path());
        }
        // The copy must not archive into the original's archive, nor pretend to be it.
        std::string extra = "\n# Added by warden restore of backup " +
                            (opts.restored_id.empty() ? info.id : opts.restored_id) + "\narchive_mode = 'off'\n";
        if (opts.standby) {
            extra += "primary_conninfo = " + recovery::conf_quote(opts.primary_conninfo) + "\n";
            target.write_file("standby.signal", "", false);
        }
        target.write_file("postgresql.auto.conf", extra, true);

        for (const auto& [oid, dir] : tablespaces)
            dir->sync();
        target.sync();
        if (control_held_back)
            target.rename_new(kControlFileWhileRestoring, kControlFile);
    } catch (...) {
        for (auto& [oid, dir] : tablespaces)
            dir->discard();
        target.discard();
        throw;
    }
    return report;
}

}  // namespace warden
