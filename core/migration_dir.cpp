// load_migration_dir: the files of a migration folder, read for build_migration_set.
//
// Kept apart from the parsing (migration_files.cpp), which the extension links too: this
// part does file I/O and starts threads, which only the utility may do. A folder of
// 10,000 migrations costs about 10 microseconds of system time per file, most of
// `warden migrate status`; two readers halve it.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <new>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "error.hpp"
#include "migration_files.hpp"

namespace warden {

namespace {

constexpr std::size_t reader_threads = 2;
constexpr std::size_t files_per_thread_minimum = 256;

bool ends_with(const std::string& s, const char* suffix)
{
    std::size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Reads one regular file relative to the folder, or the checked target of a symlink
// (an absolute path). A short read of a regular file means its end, which saves the
// extra read() that would return 0. O_NOFOLLOW: a file replaced by a symlink after the
// listing is not read.
bool read_file(int dir_fd, const std::string& name, std::string& out, int& error)
{
    int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        error = errno;
        return false;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf)
            break;
    }
    error = n < 0 ? errno : 0;
    close(fd);
    return n >= 0;
}

std::string real_path(const std::string& path)
{
    char* resolved = realpath(path.c_str(), nullptr);
    if (resolved == nullptr)
        return {};
    std::string out = resolved;
    free(resolved);
    return out;
}

// A symlink in the folder: nullopt when it leads nowhere or to no regular file (skipped,
// as before), else the resolved path to read. Throws when it leaves the folder.
std::optional<std::string> symlink_target(const std::string& dir, const std::string& real_dir,
                                          const std::string& name, bool follow_symlinks)
{
    std::string target = real_path(dir + "/" + name);
    struct stat st;
    if (target.empty() || stat(target.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        return std::nullopt;
    bool inside = target.size() > real_dir.size() && target.compare(0, real_dir.size(), real_dir) == 0 &&
                  (real_dir == "/" || target[real_dir.size()] == '/');
    if (!inside && !follow_symlinks)
        throw Error(sqlstate::invalid_parameter_value,
                    "migration file \"" + name + "\" is a symbolic link to \"" + target +
                        "\", outside the migration folder \"" + dir + "\"; refusing it",
                    "", "Copy the file into the folder, or pass --follow-symlinks if the link is intended.");
    return target;
}

}  // namespace

std::vector<MigrationFile> load_migration_dir(const std::string& dir, bool follow_symlinks,
                                              Layout layout, Layout* detected,
                                              std::vector<RepeatableFile>* repeatables)
{
    DIR* d = opendir(dir.c_str());
    if (!d)
        throw Error(sqlstate::invalid_parameter_value,
                    "cannot read migration folder \"" + dir + "\": " + std::strerror(errno));
    std::vector<ScriptFile> files;
    std::map<std::string, std::string> link_targets;  // file name -> resolved path
    std::string real_dir = real_path(dir);
    try {
        while (dirent* e = readdir(d)) {
            std::string name = e->d_name;
            if (name.empty() || name[0] == '.' || !ends_with(name, ".sql"))
                continue;
            // d_type saves a stat per file; some file systems don't fill it in.
            unsigned char type = e->d_type;
            if (type == DT_UNKNOWN) {
                struct stat st;
                if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                    continue;
                type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
            }
            if (type == DT_LNK) {
                auto target = symlink_target(dir, real_dir, name, follow_symlinks);
                if (!target)
                    continue;
                link_targets[name] = *target;
            } else if (type != DT_REG) {
                continue;
            }
            files.push_back({std::move(name), {}});
        }
    } catch (...) {
        closedir(d);
        throw;
    }
    std::sort(files.begin(), files.end(),
              [](const ScriptFile& a, const ScriptFile& b) { return a.file_name < b.file_name; });

    // Each reader takes every k-th file; the first failure (in name order) is reported.
    std::size_t threads = std::min(reader_threads, 1 + files.size() / files_per_thread_minimum);
    std::vector<int> errors(files.size(), 0);
    // Nothing may escape a reader thread (std::terminate): out of memory is an error too.
    auto read_share = [&](std::size_t first) {
        for (std::size_t i = first; i < files.size(); i += threads) {
            try {
                auto link = link_targets.find(files[i].file_name);
                if (link == link_targets.end())
                    read_file(dirfd(d), files[i].file_name, files[i].content, errors[i]);
                else
                    read_file(AT_FDCWD, link->second, files[i].content, errors[i]);
            } catch (const std::bad_alloc&) {
                errors[i] = ENOMEM;
            }
        }
    };
    std::vector<std::thread> readers;
    for (std::size_t t = 1; t < threads; ++t)
        readers.emplace_back(read_share, t);
    read_share(0);
    for (auto& r : readers)
        r.join();
    closedir(d);
    for (std::size_t i = 0; i < files.size(); ++i)
        if (errors[i] != 0)
            throw Error(sqlstate::invalid_parameter_value,
                        "cannot read \"" + dir + "/" + files[i].file_name + "\": " +
                            std::strerror(errors[i]));
    return build_migration_set(files, layout, detected, repeatables);
}

}  // namespace warden
