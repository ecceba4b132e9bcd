#include "catalog_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "error.hpp"
#include "fs/safe_file.hpp"

namespace warden {

namespace {
// A backup.json lists every stored file and WAL segment: a few MB for the largest
// clusters. Anything far bigger is not one of ours and is not read into memory.
constexpr std::size_t kMaxDescriptionBytes = 256u << 20;

BackupInfo read_description(const fs::Dir& folder, const std::string& name)
{
    // Owned by whoever owns the folder: a hard link to another account's file is refused.
    std::optional<std::string> text =
        fs::read_small_file(folder, kDescriptionFile, kMaxDescriptionBytes, folder.owner().uid);
    if (!text)
        throw Error("58030", std::string("no ") + kDescriptionFile);
    return description_for_folder(name, *text);
}

fs::Dir open_catalog(const std::string& dir)
{
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error("58030", "backup folder \"" + dir + "\" does not exist");
    return fs::Dir::open(dir);
}

std::vector<std::string> folder_names(const fs::Dir& catalog)
{
    // A second descriptor: readdir consumes the one it is given.
    int fd = ::openat(catalog.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
    if (d == nullptr) {
        if (fd >= 0)
            ::close(fd);
        throw Error("58030", "could not list \"" + catalog.path() + "\": " + std::strerror(errno));
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..")
            names.push_back(name);
    }
    ::closedir(d);
    return names;
}
}  // namespace

CatalogListing load_catalog(const std::string& dir)
{
    fs::Dir catalog = open_catalog(dir);
    CatalogListing out;
    for (const std::string& name : folder_names(catalog)) {
        std::optional<struct stat> st = fs::stat_at(catalog, name);
        if (!st)
            continue;
        bool partial = name.rfind(kPartialPrefix, 0) == 0;
        if (!partial && !valid_backup_id(name))
            continue;
        if (S_ISLNK(st->st_mode)) {
            out.unusable.emplace_back(name, "a symbolic link, not a backup folder");
            continue;
        }
        if (!S_ISDIR(st->st_mode))
            continue;
        if (partial) {
            out.unusable.emplace_back(name, "interrupted or running backup");
            continue;
        }
        try {
            out.backups.push_back(read_description(catalog.open_subdir(name), name));
        } catch (const Error& e) {
            out.unusable.emplace_back(name, e.what());
        }
    }
    sort_listing(out);
    return out;
}

BackupInfo load_backup(const std::string& dir, const std::string& id)
{
    fs::Dir catalog = open_catalog(dir);
    std::optional<struct stat> st;
    if (valid_backup_id(id))
        st = fs::stat_at(catalog, id);
    if (!st || !S_ISDIR(st->st_mode))
        throw Error(sqlstate::invalid_parameter_value,
                    "unknown backup ID \"" + id + "\" in " + dir, {},
                    "warden backup list --dir " + dir + " shows the backups.");
    return read_description(catalog.open_subdir(id), id);
}

void write_description(const std::string& backup_dir, const BackupInfo& info)
{
    // The backup's own folder is opened without following a symlink put in its place.
    fs::Dir folder = fs::Dir::open_no_follow(backup_dir);
    fs::Owner owner = folder.owner();
    std::optional<fs::Owner> give;
    if (::geteuid() != owner.uid)
        give = owner;
    fs::write_file_atomically(folder, kDescriptionFile, to_json_text(info), fs::kPrivateFileMode, give);
}

}  // namespace warden
