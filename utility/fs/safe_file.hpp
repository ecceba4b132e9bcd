// The utility's one file-safety layer. Every file or folder a `warden` command creates,
// and every file it reads from a folder someone else can write to, goes through here.
//
// The rules (docs/security.md, "The utility's files"):
// - What we create is created with O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable
//   temporary name, so nothing planted in advance (a file, a symlink) is opened instead.
// - Mode and owner are set on the descriptor (fchmod, fchown), never by path, then the
//   bytes are fsynced, the file is renamed over its final name (a symlink there is
//   replaced, not followed) and the directory is fsynced.
// - What we read from a folder we did not create is opened with O_NOFOLLOW|O_NONBLOCK,
//   then fstat'ed: a regular file, owned by the expected account, not bigger than asked.
// - Modes are the server's: 0700 folders, 0600 files (kPrivateDirMode, kPrivateFileMode).
//
// Every name below is resolved relative to an open directory (openat and friends), so a
// parent folder renamed or replaced by a symlink after it was opened redirects nothing.
// Names are single path components: a '/' or ".." in a name is refused (is_plain_name).
//
// Errors are warden::Error with SQLSTATE 58030 (io_error) or 22023 for a refused file,
// and a one-line message naming the path.
//
// Note for files that alias `namespace fs = std::filesystem;` at global scope and then
// write `fs::path` inside `namespace warden`: once this header is included, `fs` there
// means warden::fs. Move the alias inside your namespace, or name it `stdfs`.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace warden::fs {

inline constexpr mode_t kPrivateDirMode = 0700;
inline constexpr mode_t kPrivateFileMode = 0600;

// An owned file descriptor, closed when it goes out of scope.
class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept;
    // Closes now and throws (naming `what`) if close reports an error: for files just
    // written, where a late write error may only show here.
    void close(const std::string& what);

private:
    int fd_ = -1;
};

struct Owner {
    uid_t uid;
    gid_t gid;
};

// A directory held open by descriptor. path() is kept for messages only.
class Dir {
public:
    // Opens a folder the user named on the command line. Symlinks in that path are
    // followed: choosing the path is the user's decision, not an attacker's.
    static Dir open(const std::string& path);
    // Opens PATH following symlinks in its parent folders (the user's choice) but not at
    // its last component: for a folder inside a catalog, named by a path.
    static Dir open_no_follow(const std::string& path);
    // Opens NAME inside this folder; a symlink at NAME is refused (ELOOP/ENOTDIR).
    Dir open_subdir(const std::string& name) const;

    int fd() const noexcept { return fd_.get(); }
    const std::string& path() const noexcept { return path_; }
    // path() + "/" + name, for messages.
    std::string path_of(const std::string& name) const;
    // fstat of the open folder.
    struct stat status() const;
    // The folder's owner, e.g. the server account owning a data directory: files we
    // write there as root are given to it.
    Owner owner() const;

private:
    Dir(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    Fd fd_;
    std::string path_;
};

// A name usable as one path component: not empty, not "." or "..", no '/' and no NUL.
bool is_plain_name(std::string_view name);

// "BASE.tmp.<16 random hex digits>" (getrandom): a name nobody can plant in advance.
std::string temp_name(const std::string& base);

// Creates NAME in DIR for writing, with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC: fails if
// anything, even a dangling symlink, already has that name. The mode is then set with
// fchmod, so the umask neither loosens nor tightens it.
Fd create_exclusive(const Dir& dir, const std::string& name, mode_t mode = kPrivateFileMode);

// A file being written under a temporary name (create_exclusive + temp_name) that
// becomes NAME only on commit(): fchmod/fchown by descriptor, fsync, renameat over
// NAME (replacing whatever is there, a symlink included, without following it), fsync
// of DIR. Destroyed without commit(), the temporary file is removed. DIR must outlive it.
class AtomicFile {
public:
    AtomicFile(const Dir& dir, std::string name, mode_t mode = kPrivateFileMode,
               std::optional<Owner> owner = std::nullopt);
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile();

    int fd() const noexcept { return fd_.get(); }
    void write(std::string_view bytes);
    void commit();

private:
    const Dir& dir_;
    std::string name_;
    std::string temp_;
    mode_t mode_;
    std::optional<Owner> owner_;
    Fd fd_;
    bool committed_ = false;
};

// The whole of BYTES as NAME in DIR, through an AtomicFile.
void write_file_atomically(const Dir& dir, const std::string& name, std::string_view bytes,
                           mode_t mode = kPrivateFileMode,
                           std::optional<Owner> owner = std::nullopt);

// Opens NAME in DIR for reading as a file someone else may have planted:
// O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC (a symlink, or a FIFO that would block,
// is refused), then fstat: a regular file, and owned by expected_owner when given.
// nullopt when nothing has that name.
std::optional<Fd> open_untrusted_regular(const Dir& dir, const std::string& name,
                                         std::optional<uid_t> expected_owner = std::nullopt);

// The same for a relative path such as "dump/toc.dat" (a name from a manifest): every
// component must be a plain name, and no component is followed if it is a symlink.
std::optional<Fd> open_untrusted_below(const Dir& root, const std::string& relative_path,
                                       std::optional<uid_t> expected_owner = std::nullopt);

// The contents of a file opened as open_untrusted_regular does; refused when bigger
// than max_size (checked on fstat before reading, and again while reading).
// nullopt when nothing has that name.
std::optional<std::string> read_small_file(const Dir& dir, const std::string& name,
                                           std::size_t max_size,
                                           std::optional<uid_t> expected_owner = std::nullopt);
// The same from an open descriptor; `what` names it in messages.
std::string read_all(int fd, const std::string& what, std::size_t max_size);

// Creates NAME in PARENT as a folder with exactly `mode` (fchmod after mkdirat), and
// returns it open. Fails when NAME exists (EEXIST in the error's message).
Dir make_private_dir(const Dir& parent, const std::string& name, mode_t mode = kPrivateDirMode);
// The same, but nullopt when NAME already exists (for picking a fresh name).
std::optional<Dir> try_make_private_dir(const Dir& parent, const std::string& name,
                                        mode_t mode = kPrivateDirMode);
// Creates PATH and any missing parents with `mode` (a folder the user named, such as a
// backup catalog); folders already there are kept as they are. Returns it open.
Dir make_dirs(const std::string& path, mode_t mode = kPrivateDirMode);

// What is at NAME in DIR, without following a symlink; nullopt when nothing is.
std::optional<struct stat> stat_at(const Dir& dir, const std::string& name);

// Removes NAME (a file or a symlink, never what a symlink points to). Missing is fine.
void remove_file(const Dir& dir, const std::string& name);
// Renames FROM to TO within DIR, never over an existing TO (RENAME_NOREPLACE where the
// file system has it), then fsyncs DIR.
void rename_in(const Dir& dir, const std::string& from, const std::string& to);

void fsync_fd(int fd, const std::string& what);
void fsync_dir(const Dir& dir);

}  // namespace warden::fs
