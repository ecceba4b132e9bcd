#include "safe_file.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "error.hpp"

namespace warden::fs {

namespace {
constexpr const char* kIoError = "58030";

[[noreturn]] void fail(const std::string& what, const std::string& path, int err)
{
    throw Error(kIoError, "could not " + what + " \"" + path + "\": " + std::strerror(err));
}

[[noreturn]] void refuse(const std::string& path, const std::string& why)
{
    throw Error(sqlstate::invalid_parameter_value, "refusing \"" + path + "\": " + why);
}

void check_name(const Dir& dir, const std::string& name)
{
    if (!is_plain_name(name))
        refuse(dir.path_of(name), "not a plain file name");
}

void write_all(int fd, std::string_view bytes, const std::string& what)
{
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("write", what, errno);
        done += static_cast<std::size_t>(n);
    }
}
}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept
{
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

Fd::~Fd()
{
    if (fd_ >= 0)
        ::close(fd_);
}

int Fd::release() noexcept
{
    int fd = fd_;
    fd_ = -1;
    return fd;
}

void Fd::close(const std::string& what)
{
    int fd = release();
    if (fd >= 0 && ::close(fd) != 0)
        fail("close", what, errno);
}

Dir Dir::open(const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail("open folder", path, errno);
    return Dir(Fd(fd), path);
}

Dir Dir::open_no_follow(const std::string& path)
{
    std::string p = path;
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    std::size_t slash = p.rfind('/');
    if (slash == std::string::npos)
        return open(".").open_subdir(p);
    Dir parent = open(slash == 0 ? "/" : p.substr(0, slash));
    Dir d = parent.open_subdir(p.substr(slash + 1));
    d.path_ = path;
    return d;
}

Dir Dir::open_subdir(const std::string& name) const
{
    check_name(*this, name);
    int fd = ::openat(fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        struct stat st {};
        if ((saved == ELOOP || saved == ENOTDIR) &&
            ::fstatat(fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
            refuse(path_of(name), S_ISLNK(st.st_mode) ? "it is a symbolic link" : "not a folder");
        fail("open folder", path_of(name), saved);
    }
    return Dir(Fd(fd), path_of(name));
}

std::string Dir::path_of(const std::string& name) const
{
    return path_.empty() || path_.back() == '/' ? path_ + name : path_ + "/" + name;
}

struct stat Dir::status() const
{
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0)
        fail("stat", path_, errno);
    return st;
}

Owner Dir::owner() const
{
    struct stat st = status();
    return {st.st_uid, st.st_gid};
}

bool is_plain_name(std::string_view name)
{
    return !name.empty() && name != "." && name != ".." &&
           name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

std::string temp_name(const std::string& base)
{
    unsigned char random[8];
    std::size_t got = 0;
    while (got < sizeof random) {
        ssize_t n = ::getrandom(random + got, sizeof random - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error(kIoError, std::string("could not get random bytes: ") + std::strerror(errno));
        got += static_cast<std::size_t>(n);
    }
    static const char hex[] = "0123456789abcdef";
    std::string out = base + ".tmp.";
    for (unsigned char b : random) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

Fd create_exclusive(const Dir& dir, const std::string& name, mode_t mode)
{
    check_name(dir, name);
    int fd = ::openat(dir.fd(), name.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        fail("create", dir.path_of(name), errno);
    Fd out(fd);
    if (::fchmod(fd, mode) != 0) {
        int saved = errno;
        ::unlinkat(dir.fd(), name.c_str(), 0);
        fail("set the mode of", dir.path_of(name), saved);
    }
    return out;
}

AtomicFile::AtomicFile(const Dir& dir, std::string name, mode_t mode, std::optional<Owner> owner)
    : dir_(dir), name_(std::move(name)), mode_(mode), owner_(owner)
{
    check_name(dir_, name_);
    // A random name is unguessable, so O_EXCL rarely meets a collision; a few retries
    // cover the rare one, and a folder full of planted names still fails cleanly.
    for (int attempt = 0;; ++attempt) {
        temp_ = temp_name(name_);
        int fd = ::openat(dir_.fd(), temp_.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_);
        if (fd >= 0) {
            fd_ = Fd(fd);
            break;
        }
        if (errno != EEXIST || attempt == 3)
            fail("create", dir_.path_of(temp_), errno);
    }
}

AtomicFile::~AtomicFile()
{
    if (!committed_) {
        fd_ = Fd();
        ::unlinkat(dir_.fd(), temp_.c_str(), 0);
    }
}

void AtomicFile::write(std::string_view bytes) { write_all(fd_.get(), bytes, dir_.path_of(temp_)); }

void AtomicFile::commit()
{
    std::string what = dir_.path_of(temp_);
    // By descriptor: the inode we wrote is the one that changes hands, whatever the
    // folder's owner does to the name meanwhile.
    if (owner_ && ::fchown(fd_.get(), owner_->uid, owner_->gid) != 0)
        fail("change the owner of", what, errno);
    if (::fchmod(fd_.get(), mode_) != 0)
        fail("set the mode of", what, errno);
    fsync_fd(fd_.get(), what);
    fd_.close(what);
    if (::renameat(dir_.fd(), temp_.c_str(), dir_.fd(), name_.c_str()) != 0)
        fail("rename into place", dir_.path_of(name_), errno);
    committed_ = true;
    fsync_dir(dir_);
}

void write_file_atomically(const Dir& dir, const std::string& name, std::string_view bytes,
                           mode_t mode, std::optional<Owner> owner)
{
    AtomicFile f(dir, name, mode, owner);
    f.write(bytes);
    f.commit();
}

std::optional<Fd> open_untrusted_regular(const Dir& dir, const std::string& name,
                                         std::optional<uid_t> expected_owner)
{
    check_name(dir, name);
    std::string path = dir.path_of(name);
    // O_NONBLOCK: opening a FIFO planted under this name must not hang the command.
    int fd = ::openat(dir.fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::nullopt;
        if (errno == ELOOP)
            refuse(path, "it is a symbolic link");
        fail("open", path, errno);
    }
    Fd out(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        fail("stat", path, errno);
    if (!S_ISREG(st.st_mode))
        refuse(path, "not a regular file");
    if (expected_owner && st.st_uid != *expected_owner)
        refuse(path, "owned by uid " + std::to_string(st.st_uid) + ", expected uid " +
                         std::to_string(*expected_owner));
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        fail("open", path, errno);
    return out;
}

std::optional<Fd> open_untrusted_below(const Dir& root, const std::string& relative_path,
                                       std::optional<uid_t> expected_owner)
{
    std::size_t slash = relative_path.find('/');
    if (slash == std::string::npos)
        return open_untrusted_regular(root, relative_path, expected_owner);
    std::string first = relative_path.substr(0, slash);
    if (!stat_at(root, first))
        return std::nullopt;
    return open_untrusted_below(root.open_subdir(first), relative_path.substr(slash + 1), expected_owner);
}

std::string read_all(int fd, const std::string& what, std::size_t max_size)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        fail("stat", what, errno);
    if (static_cast<std::uint64_t>(st.st_size) > max_size)
        refuse(what, "larger than " + std::to_string(max_size) + " bytes");
    std::string out;
    std::vector<char> buf(64 * 1024);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("read", what, errno);
        if (n == 0)
            break;
        // The file may grow after fstat.
        if (out.size() + static_cast<std::size_t>(n) > max_size)
            refuse(what, "larger than " + std::to_string(max_size) + " bytes");
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
    return out;
}

std::optional<std::string> read_small_file(const Dir& dir, const std::string& name,
                                           std::size_t max_size,
                                           std::optional<uid_t> expected_owner)
{
    std::optional<Fd> fd = open_untrusted_regular(dir, name, expected_owner);
    if (!fd)
        return std::nullopt;
    return read_all(fd->get(), dir.path_of(name), max_size);
}

std::optional<Dir> try_make_private_dir(const Dir& parent, const std::string& name, mode_t mode)
{
    check_name(parent, name);
    if (::mkdirat(parent.fd(), name.c_str(), mode) != 0) {
        if (errno == EEXIST)
            return std::nullopt;
        fail("create folder", parent.path_of(name), errno);
    }
    Dir d = parent.open_subdir(name);
    if (::fchmod(d.fd(), mode) != 0)
        fail("set the mode of", d.path(), errno);
    return d;
}

Dir make_private_dir(const Dir& parent, const std::string& name, mode_t mode)
{
    std::optional<Dir> d = try_make_private_dir(parent, name, mode);
    if (!d)
        fail("create folder", parent.path_of(name), EEXIST);
    return std::move(*d);
}

Dir make_dirs(const std::string& path, mode_t mode)
{
    if (path.empty())
        throw Error(sqlstate::invalid_parameter_value, "empty folder name");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0)
        return Dir::open(path);
    if (errno != ENOENT)
        fail("open folder", path, errno);
    std::string parent = path;
    while (parent.size() > 1 && parent.back() == '/')
        parent.pop_back();
    std::size_t slash = parent.rfind('/');
    std::string leaf = slash == std::string::npos ? parent : parent.substr(slash + 1);
    parent = slash == std::string::npos ? "." : slash == 0 ? "/" : parent.substr(0, slash);
    Dir up = make_dirs(parent, mode);
    if (!is_plain_name(leaf))
        refuse(path, "not a plain folder name");
    if (::mkdirat(up.fd(), leaf.c_str(), mode) == 0) {
        Dir made = up.open_subdir(leaf);
        if (::fchmod(made.fd(), mode) != 0)
            fail("set the mode of", path, errno);
    } else if (errno != EEXIST) {
        fail("create folder", path, errno);
    }
    return Dir::open(path);
}

std::optional<struct stat> stat_at(const Dir& dir, const std::string& name)
{
    check_name(dir, name);
    struct stat st {};
    if (::fstatat(dir.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        return st;
    if (errno == ENOENT)
        return std::nullopt;
    fail("stat", dir.path_of(name), errno);
}

void remove_file(const Dir& dir, const std::string& name)
{
    check_name(dir, name);
    if (::unlinkat(dir.fd(), name.c_str(), 0) != 0 && errno != ENOENT)
        fail("remove", dir.path_of(name), errno);
}

void rename_in(const Dir& dir, const std::string& from, const std::string& to)
{
    check_name(dir, from);
    check_name(dir, to);
    int rc = ::renameat2(dir.fd(), from.c_str(), dir.fd(), to.c_str(), RENAME_NOREPLACE);
    // File systems without RENAME_NOREPLACE say EINVAL: then the caller's own check that
    // `to` is free is all there is.
    if (rc != 0 && errno == EINVAL)
        rc = ::renameat(dir.fd(), from.c_str(), dir.fd(), to.c_str());
    if (rc != 0)
        fail("rename", dir.path_of(from) + "\" to \"" + dir.path_of(to), errno);
    fsync_dir(dir);
}

void fsync_fd(int fd, const std::string& what)
{
    if (::fsync(fd) != 0)
        fail("fsync", what, errno);
}

void fsync_dir(const Dir& dir) { fsync_fd(dir.fd(), dir.path()); }

}  // namespace warden::fs
