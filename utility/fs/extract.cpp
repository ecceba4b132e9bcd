#include "fs/extract.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "backup_paths.hpp"
#include "error.hpp"

namespace warden {

namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;

[[noreturn]] void fail(const std::string& what, const std::string& shown, int err)
{
    throw Error("58030", "could not " + what + " \"" + shown + "\": " + std::strerror(err));
}

std::string parent_path(const std::string& path)
{
    std::size_t slash = path.rfind('/');
    return slash == 0 ? "/" : path.substr(0, slash);
}

// Opens a directory entry as a directory, refusing a symbolic link (ELOOP) or anything
// that is not a directory (ENOTDIR).
int open_subdir(int dirfd, const std::string& name)
{
    return ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

std::vector<std::string> entries_of(int dirfd)
{
    std::vector<std::string> names;
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return names;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return names;
    }
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(std::move(n));
    }
    ::closedir(d);
    return names;
}

void remove_contents(int dirfd) noexcept
{
    for (const auto& name : entries_of(dirfd)) {
        struct stat st;
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = open_subdir(dirfd, name);
            if (sub >= 0) {
                remove_contents(sub);
                ::close(sub);
            }
            ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
        } else {
            ::unlinkat(dirfd, name.c_str(), 0);
        }
    }
}

void write_all(int fd, const char* data, std::size_t len, std::int64_t offset, const std::string& shown)
{
    while (len > 0) {
        ssize_t n = ::pwrite(fd, data, len, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("write", shown, errno);
        data += n;
        len -= static_cast<std::size_t>(n);
        offset += n;
    }
}

}  // namespace

RestoreFile::RestoreFile(int fd, std::string shown) : fd_(fd), shown_(std::move(shown)) {}

RestoreFile::RestoreFile(RestoreFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), shown_(std::move(other.shown_)), end_(other.end_)
{
}

RestoreFile::~RestoreFile()
{
    if (fd_ >= 0)
        ::close(fd_);
}

void RestoreFile::write(const void* data, std::size_t len, std::int64_t offset)
{
    if (offset < 0 || static_cast<std::uint64_t>(offset) != end_)
        throw Error("XX001", "\"" + shown_ + "\": data out of order in the archive (a hole or an overlap)");
    write_all(fd_, static_cast<const char*>(data), len, offset, shown_);
    end_ += len;
}

void RestoreFile::finish(std::uint64_t size, std::int64_t mtime)
{
    if (end_ != size)
        throw Error("XX001", "\"" + shown_ + "\": " + std::to_string(end_) + " bytes in the archive, " +
                                 std::to_string(size) + " announced");
    struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
    if (::futimens(fd_, times) != 0)
        fail("set the time of", shown_, errno);
    int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0)
        fail("write", shown_, errno);
}

RestoreDir::RestoreDir(const std::string& path, const std::string& what, bool follow_symlink,
                       const std::string& hint)
    : path_(path)
{
    // Missing parents are the operator's path: created as mkdir -p would, and removed
    // again by discard().
    std::vector<std::string> missing;
    struct stat st;
    for (std::string p = parent_path(path_); p != "/" && ::lstat(p.c_str(), &st) != 0 && errno == ENOENT;
         p = parent_path(p))
        missing.insert(missing.begin(), p);
    for (const auto& p : missing) {
        if (::mkdir(p.c_str(), 0777) == 0)
            created_parents_.push_back(p);
        else if (errno != EEXIST)
            fail("create", p, errno);
    }
    try {
        if (::mkdir(path_.c_str(), kDirMode) == 0)
            created_ = true;
        else if (errno != EEXIST)
            fail("create", path_, errno);
        fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow_symlink ? 0 : O_NOFOLLOW));
        if (fd_ < 0) {
            int err = errno;
            if (err == ELOOP || err == ENOTDIR) {
                bool link = ::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
                throw Error(sqlstate::object_not_in_prerequisite_state,
                            what + " \"" + path_ + "\" is not a directory" + (link ? " (a symbolic link)" : ""));
            }
            fail("open", path_, err);
        }
        if (::fstat(fd_, &st) != 0)
            fail("examine", path_, errno);
        if (st.st_uid != ::geteuid())
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        what + " \"" + path_ + "\" belongs to another user", {},
                        "Restore as the user who owns it, into a new directory.");
        if (!created_ && !entries_of(fd_).empty())
            throw Error(sqlstate::object_not_in_prerequisite_state, what + " \"" + path_ + "\" is not empty", {}, hint);
        if (::fchmod(fd_, kDirMode) != 0)
            fail("set the mode of", path_, errno);
    } catch (...) {
        // Only what this constructor created goes: a directory it refused stays as it was.
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
        discard();
        throw;
    }
}

RestoreDir::~RestoreDir()
{
    forget_parent();
    if (fd_ >= 0)
        ::close(fd_);
}

std::string RestoreDir::shown(const std::string& rel) const { return path_ + "/" + printable(rel); }

void RestoreDir::forget_parent() noexcept
{
    if (cached_fd_ >= 0)
        ::close(cached_fd_);
    cached_fd_ = -1;
    cached_parent_.clear();
}

int RestoreDir::parent_of(const std::string& rel, std::string& leaf)
{
    std::size_t slash = rel.rfind('/');
    leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (slash == std::string::npos)
        return fd_;
    std::string parent = rel.substr(0, slash);
    // Archives list a directory's files together: one walk serves them all.
    if (cached_fd_ >= 0 && parent == cached_parent_)
        return cached_fd_;
    forget_parent();
    int cur = fd_;
    std::size_t start = 0;
    for (;;) {
        std::size_t end = parent.find('/', start);
        std::string part = parent.substr(start, end == std::string::npos ? end : end - start);
        int next = open_subdir(cur, part);
        if (next < 0 && errno == ENOENT) {
            if (::mkdirat(cur, part.c_str(), kDirMode) != 0 && errno != EEXIST)
                fail("create", shown(parent.substr(0, end)), errno);
            next = open_subdir(cur, part);
            if (next >= 0 && ::fchmod(next, kDirMode) != 0)
                fail("set the mode of", shown(parent.substr(0, end)), errno);
        }
        int err = errno;
        if (cur != fd_)
            ::close(cur);
        if (next < 0) {
            if (err == ELOOP || err == ENOTDIR)
                throw Error("XX001", "\"" + shown(parent.substr(0, end)) + "\" is not a directory; refusing");
            fail("open", shown(parent.substr(0, end)), err);
        }
        cur = next;
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    cached_fd_ = cur;
    cached_parent_ = parent;
    return cur;
}

void RestoreDir::make_directory(const std::string& rel)
{
    std::string leaf;
    int dirfd = parent_of(rel, leaf);
    if (::mkdirat(dirfd, leaf.c_str(), kDirMode) != 0 && errno != EEXIST)
        fail("create", shown(rel), errno);
    int fd = open_subdir(dirfd, leaf);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            throw Error("XX001", "\"" + shown(rel) + "\" is not a directory; refusing");
        fail("open", shown(rel), errno);
    }
    int rc = ::fchmod(fd, kDirMode);
    int err = errno;
    ::close(fd);
    if (rc != 0)
        fail("set the mode of", shown(rel), err);
}

void RestoreFile::write_at(const void* data, std::size_t len, std::int64_t offset)
{
    if (offset < 0)
        throw Error("XX001", "\"" + shown_ + "\": negative offset");
    write_all(fd_, static_cast<const char*>(data), len, offset, shown_);
}

void RestoreFile::resize_and_close(std::uint64_t size)
{
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
        fail("truncate", shown_, errno);
    int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0)
        fail("write", shown_, errno);
}

RestoreFile RestoreDir::reopen_file(const std::string& rel)
{
    std::string leaf;
    int dirfd = parent_of(rel, leaf);
    int fd = ::openat(dirfd, leaf.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        fail("open", shown(rel), errno);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("XX001", "\"" + shown(rel) + "\" is not a regular file; refusing");
    }
    return RestoreFile(fd, shown(rel));
}

void RestoreDir::remove_file(const std::string& rel)
{
    std::string leaf;
    int dirfd = parent_of(rel, leaf);
    if (::unlinkat(dirfd, leaf.c_str(), 0) != 0 && errno != ENOENT)
        fail("remove", shown(rel), errno);
}

RestoreFile RestoreDir::create_file(const std::string& rel)
{
    std::string leaf;
    int dirfd = parent_of(rel, leaf);
    int fd = ::openat(dirfd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kFileMode);
    if (fd < 0) {
        if (errno == EEXIST)
            throw Error("XX001", "\"" + shown(rel) + "\" appears twice in the archives; refusing");
        fail("create", shown(rel), errno);
    }
    // The umask could have taken bits away; the server needs exactly these.
    if (::fchmod(fd, kFileMode) != 0) {
        int err = errno;
        ::close(fd);
        fail("set the mode of", shown(rel), err);
    }
    return RestoreFile(fd, shown(rel));
}

void RestoreDir::write_file(const std::string& rel, const std::string& text, bool append)
{
    std::string leaf;
    int dirfd = parent_of(rel, leaf);
    // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader.
    int fd = ::openat(dirfd, leaf.c_str(),
                      O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                      kFileMode);
    if (fd < 0)
        fail("open", shown(rel), errno);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("XX001", "\"" + shown(rel) + "\" is not a regular file; refusing");
    }
    std::int64_t offset = append ? static_cast<std::int64_t>(st.st_size) : 0;
    try {
        write_all(fd, text.data(), text.size(), offset, shown(rel));
    } catch (...) {
        ::close(fd);
        throw;
    }
    if (::close(fd) != 0)
        fail("write", shown(rel), errno);
}

void RestoreDir::make_symlink(const std::string& rel, const std::string& target)
{
    std::string leaf;
    int dirfd = parent_of(rel, leaf);
    if (::symlinkat(target.c_str(), dirfd, leaf.c_str()) != 0)
        fail("create", shown(rel), errno);
}

void RestoreDir::rename_new(const std::string& from_rel, const std::string& to_rel)
{
    std::string from_leaf, to_leaf;
    int dirfd = parent_of(from_rel, from_leaf);
    if (parent_of(to_rel, to_leaf) != dirfd)
        throw Error(sqlstate::internal_error, "rename across directories: " + from_rel + " -> " + to_rel);
    if (::renameat2(dirfd, from_leaf.c_str(), dirfd, to_leaf.c_str(), RENAME_NOREPLACE) != 0)
        fail("rename into", shown(to_rel), errno);
    if (::fsync(dirfd) != 0)
        fail("fsync", shown(to_rel), errno);
}

void RestoreDir::sync()
{
    if (::syncfs(fd_) != 0)
        fail("sync", path_, errno);
}

void RestoreDir::discard() noexcept
{
    forget_parent();
    if (fd_ >= 0)
        remove_contents(fd_);
    // rmdir removes only an empty directory: whatever replaced a path meanwhile stays.
    if (created_)
        ::rmdir(path_.c_str());
    created_ = false;
    for (auto it = created_parents_.rbegin(); it != created_parents_.rend(); ++it)
        ::rmdir(it->c_str());
    created_parents_.clear();
}

}  // namespace warden
