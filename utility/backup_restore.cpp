#include "backup_restore.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backup_check.hpp"
#include "backup_common.hpp"
#include "backup_manifest.hpp"
#include "error.hpp"
#include "progress.hpp"
#include "recovery_settings.hpp"
#include "tar_members.hpp"

namespace fs = std::filesystem;

namespace warden {

namespace {

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error("58030", "could not read \"" + path + "\"");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

BackupManifest load_manifest(const std::string& backup_path)
{
    try {
        return BackupManifest::parse(read_file(backup_path + "/backup_manifest"));
    } catch (const Error& e) {
        throw Error("XX001", std::string("backup_manifest: ") + e.what(), e.detail());
    }
}

// The archives of a backup with the tablespace each belongs to ("" = base).
std::vector<std::pair<std::string, std::string>> archives_of(const BackupInfo& info)
{
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : info.files) {
        if (f.name == "backup_manifest")
            continue;
        std::string oid;
        for (const auto& t : info.tablespaces)
            if (t.archive == f.name)
                oid = t.oid;
        if (oid.empty() && f.name.rfind("base.tar", 0) != 0)
            throw Error("XX001", f.name + ": belongs to no tablespace of the backup");
        out.emplace_back(f.name, oid);
    }
    return out;
}

bool path_is_safe(const std::string& p)
{
    if (p.empty() || p[0] == '/')
        return false;
    std::stringstream ss(p);
    std::string part;
    while (std::getline(ss, part, '/'))
        if (part == "..")
            return false;
    return true;
}

bool is_tablespace_link(const std::string& path)
{
    static const std::string prefix = "pg_tblspc/";
    return path.rfind(prefix, 0) == 0 && path.size() > prefix.size() &&
           std::all_of(path.begin() + static_cast<long>(prefix.size()), path.end(), ::isdigit);
}

bool dir_is_empty_or_absent(const std::string& path, bool& existed)
{
    std::error_code ec;
    existed = fs::exists(path, ec);
    if (!existed)
        return true;
    if (!fs::is_directory(path, ec))
        return false;
    return fs::is_empty(path, ec);
}

// Undoes a failed restore: what we created goes, what was there (empty) stays empty.
struct Cleanup {
    std::vector<std::pair<std::string, bool>> dirs;  // path, existed before
    bool armed = true;
    ~Cleanup()
    {
        if (!armed)
            return;
        for (const auto& [path, existed] : dirs) {
            if (!existed) {
                remove_tree(path);
                continue;
            }
            std::error_code ec;
            for (const auto& e : fs::directory_iterator(path, ec))
                remove_tree(e.path().string());
        }
    }
};

// chdir into a directory for the duration of an extraction: libarchive's secure mode
// refuses absolute member paths, so members are written relative to the cwd.
class ScopedChdir {
public:
    explicit ScopedChdir(const std::string& dir)
    {
        saved_ = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (saved_ < 0 || ::chdir(dir.c_str()) != 0)
            throw Error("58030", "could not enter \"" + dir + "\": " + std::strerror(errno));
    }
    ~ScopedChdir()
    {
        if (saved_ >= 0) {
            if (::fchdir(saved_) != 0) {
                // Nothing sensible to do: the process exits after a restore anyway.
            }
            ::close(saved_);
        }
    }

private:
    int saved_ = -1;
};

void append_line(const std::string& path, const std::string& text)
{
    std::ofstream out(path, std::ios::app);
    out << text;
    if (!out.flush())
        throw Error("58030", "could not write \"" + path + "\"");
}

}  // namespace

void verify_physical_backup(const std::string& backup_path, const BackupInfo& info, bool quiet)
{
    check_stored_files(backup_path, info);
    BackupManifest manifest = load_manifest(backup_path);
    BackupContentCheck check(manifest, &info.wal);
    Progress progress("verify", quiet);
    std::uint64_t done = 0;
    for (const auto& [name, oid] : archives_of(info)) {
        ArchiveFileReader reader(backup_path + "/" + name);
        try {
            reader.for_each([&](archive_entry* entry) {
                TarMember m = describe_entry(entry);
                if (m.type == 'f') {
                    m.sha256 = hash_entry_data(reader.get(), m.path);
                    done += m.size;
                    progress.update(done, info.original_bytes);
                }
                check.check(oid, m);
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
    RestoreReport report;
    report.target = fs::absolute(opts.target).lexically_normal().string();
    Cleanup cleanup;

    bool existed = false;
    if (!dir_is_empty_or_absent(report.target, existed))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "target directory \"" + report.target + "\" is not empty", {},
                    "Restore into a new or empty directory; pg_warden never overwrites a data directory.");

    // Where each tablespace goes: its original location unless mapped.
    std::map<std::string, std::string> location;
    for (const auto& t : info.tablespaces) {
        std::string dest = t.location;
        for (const auto& [from, to] : opts.tablespace_map)
            if (from == t.oid || from == t.location)
                dest = to;
        if (dest.empty() || dest[0] != '/')
            throw Error(sqlstate::invalid_parameter_value,
                        "tablespace " + t.oid + " needs an absolute location (got \"" + dest + "\")");
        bool ts_existed = false;
        if (!dir_is_empty_or_absent(dest, ts_existed))
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        "tablespace directory \"" + dest + "\" is not empty", {},
                        "Map it elsewhere with --tablespace-mapping " + t.location + "=NEWDIR.");
        location[t.oid] = dest;
        report.tablespaces.emplace_back(t.oid, dest);
    }
    for (const auto& [from, to] : opts.tablespace_map) {
        bool used = std::any_of(info.tablespaces.begin(), info.tablespaces.end(),
                                [&](const CatalogTablespace& t) { return from == t.oid || from == t.location; });
        if (!used)
            throw Error(sqlstate::invalid_parameter_value,
                        "--tablespace-mapping " + from + ": the backup has no such tablespace");
    }

    std::error_code ec;
    fs::create_directories(report.target, ec);
    if (ec)
        throw Error("58030", "could not create \"" + report.target + "\": " + ec.message());
    cleanup.dirs.emplace_back(report.target, existed);
    ::chmod(report.target.c_str(), 0700);
    for (const auto& [oid, dest] : location) {
        bool ts_existed = fs::exists(dest, ec);
        fs::create_directories(dest, ec);
        if (ec)
            throw Error("58030", "could not create \"" + dest + "\": " + ec.message());
        ::chmod(dest.c_str(), 0700);
        cleanup.dirs.emplace_back(dest, ts_existed);
    }

    BackupManifest manifest = load_manifest(backup_path);
    BackupContentCheck check(manifest, &info.wal);
    Progress progress("restore", opts.quiet);

    for (const auto& [name, oid] : archives_of(info)) {
        std::string dest = oid.empty() ? report.target : location.at(oid);
        const CatalogFile& stored = *std::find_if(info.files.begin(), info.files.end(),
                                                  [&](const CatalogFile& f) { return f.name == name; });
        ArchiveFileReader reader(backup_path + "/" + name);
        archive* aw = archive_write_disk_new();
        std::unique_ptr<archive, decltype(&archive_write_free)> aw_guard(aw, archive_write_free);
        archive_write_disk_set_options(aw, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                               ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM |
                                               ARCHIVE_EXTRACT_TIME);
        ScopedChdir in_dest(dest);
        reader.for_each([&](archive_entry* entry) {
            TarMember m = describe_entry(entry);
            std::string shown = BackupContentCheck::data_path(oid, m.path);
            if (!path_is_safe(m.path))
                throw Error("XX001", name + ": member \"" + m.path +
                                         "\" would be written outside the target directory; refusing");
            if (m.type == 'h' || m.type == 'o')
                throw Error("XX001", name + ": member \"" + m.path + "\" is not a file, directory or symlink");
            if (m.type == 'l') {
                if (oid.empty() && is_tablespace_link(m.path))
                    return;  // recreated below, pointing at the mapped location
                if (!path_is_safe(m.link))
                    throw Error("XX001", name + ": symlink \"" + m.path + "\" points outside the target (" +
                                             m.link + "); refusing");
            }
            if (archive_write_header(aw, entry) != ARCHIVE_OK)
                throw Error("58030", "could not extract \"" + shown + "\": " + archive_error_string(aw));
            if (m.type == 'f') {
                m.sha256 = hash_entry_data(reader.get(), m.path,
                                           [&](const void* buf, std::size_t len, std::int64_t off) {
                                               if (archive_write_data_block(aw, buf, len, off) != ARCHIVE_OK)
                                                   throw Error("58030", "could not write \"" + shown +
                                                                            "\": " + archive_error_string(aw));
                                           });
                report.bytes += m.size;
                ++report.files;
                progress.update(report.bytes, info.original_bytes);
            }
            if (archive_write_finish_entry(aw) != ARCHIVE_OK)
                throw Error("58030", "could not finish \"" + shown + "\": " + archive_error_string(aw));
            check.check(oid, m);
        });
        if (reader.file_sha256() != stored.sha256)
            throw Error("XX001", name + ": checksum mismatch with backup.json");
    }
    progress.clear();
    check.finish();

    for (const auto& [oid, dest] : location) {
        std::string link = report.target + "/pg_tblspc/" + oid;
        fs::create_directories(report.target + "/pg_tblspc", ec);
        if (::symlink(dest.c_str(), link.c_str()) != 0)
            throw Error("58030", "could not create \"" + link + "\": " + std::strerror(errno));
    }

    // The copy must not archive into the original's archive, nor pretend to be it.
    std::string auto_conf = report.target + "/postgresql.auto.conf";
    std::string extra = "\n# Added by warden restore of backup " + info.id + "\narchive_mode = 'off'\n";
    if (opts.standby) {
        extra += "primary_conninfo = " + recovery::conf_quote(opts.primary_conninfo) + "\n";
        std::ofstream(report.target + "/standby.signal").flush();
    }
    append_line(auto_conf, extra);
    ::chmod(report.target.c_str(), 0700);

    int fd = ::open(report.target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::syncfs(fd);
        ::close(fd);
    }
    cleanup.armed = false;
    return report;
}

}  // namespace warden
