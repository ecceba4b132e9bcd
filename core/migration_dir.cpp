// load_migration_dir: the files of a migration folder, read for build_migration_set.
//
// Kept apart from the parsing (migration_files.cpp), which the extension links too: this
// part does file I/O and starts threads, which only the utility may do. A folder of
// 10,000 migrations costs about 10 microseconds of system time per file, most of
// `warden migrate status`; two readers halve it.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <new>
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

// Reads one regular file relative to the folder. A short read of a regular file means
// its end, which saves the extra read() that would return 0.
bool read_file(int dir_fd, const std::string& name, std::string& out, int& error)
{
    int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC);
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

}  // namespace

std::vector<MigrationFile> load_migration_dir(const std::string& dir)
{
    DIR* d = opendir(dir.c_str());
    if (!d)
        throw Error(sqlstate::invalid_parameter_value,
                    "cannot read migration folder \"" + dir + "\": " + std::strerror(errno));
    std::vector<ScriptFile> files;
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name.empty() || name[0] == '.' || !ends_with(name, ".sql"))
            continue;
        // d_type saves a stat per file; some file systems don't fill it in.
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat st;
            if (fstatat(dirfd(d), name.c_str(), &st, 0) != 0 || !S_ISREG(st.st_mode))
                continue;
        } else if (e->d_type != DT_REG) {
            continue;
        }
        files.push_back({std::move(name), {}});
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
                read_file(dirfd(d), files[i].file_name, files[i].content, errors[i]);
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
    return build_migration_set(files);
}

}  // namespace warden
