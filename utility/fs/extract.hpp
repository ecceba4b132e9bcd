// Writing a restored tree strictly inside one directory: every path is resolved from a
// descriptor of that directory, one component at a time, never following a symbolic
// link, and every file or directory is created by this process with PostgreSQL's own
// modes (0600 files, 0700 directories), whatever an archive says. Nothing here changes
// the working directory or touches a path outside the tree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace warden {

// A file created inside a RestoreDir, written block by block.
class RestoreFile {
public:
    RestoreFile(int fd, std::string shown);
    ~RestoreFile();
    RestoreFile(RestoreFile&& other) noexcept;
    RestoreFile(const RestoreFile&) = delete;
    RestoreFile& operator=(const RestoreFile&) = delete;
    RestoreFile& operator=(RestoreFile&&) = delete;

    void write(const void* data, std::size_t len, std::int64_t offset);
    // Checks that exactly `size` bytes were written, sets the modification time, closes.
    void finish(std::uint64_t size, std::int64_t mtime);
    // For a file reopened to patch blocks in place (RestoreDir::reopen_file): writes
    // anywhere, then sets the final size and closes.
    void write_at(const void* data, std::size_t len, std::int64_t offset);
    void resize_and_close(std::uint64_t size);

private:
    int fd_;
    std::string shown_;
    std::uint64_t end_ = 0;
};

class RestoreDir {
public:
    // Creates `path` with mode 0700 (and its missing parents), or takes it if it is an
    // empty directory owned by this user. `what` names it in messages ("target
    // directory"); `hint` goes with "is not empty". `follow_symlink`: whether `path`
    // itself may be a symbolic link (an operator's argument may; a name read from a
    // backup may not). `path` must be absolute and canonical.
    RestoreDir(const std::string& path, const std::string& what, bool follow_symlink, const std::string& hint);
    ~RestoreDir();
    RestoreDir(const RestoreDir&) = delete;
    RestoreDir& operator=(const RestoreDir&) = delete;

    const std::string& path() const { return path_; }

    // `rel` is a canonical relative path (core/backup_paths.hpp); missing parents are
    // created with mode 0700. An existing directory is accepted.
    void make_directory(const std::string& rel);
    // Fails if anything exists under that name.
    RestoreFile create_file(const std::string& rel);
    // Opens a regular file this restore wrote earlier, to patch it (incremental chains).
    RestoreFile reopen_file(const std::string& rel);
    // Removes a file written earlier that the newer backup no longer has; none is fine.
    void remove_file(const std::string& rel);
    // Creates or replaces (append = false) or extends (append = true) a regular file.
    void write_file(const std::string& rel, const std::string& text, bool append);
    void make_symlink(const std::string& rel, const std::string& target);
    // Renames within one directory, refusing to replace anything.
    void rename_new(const std::string& from_rel, const std::string& to_rel);
    void sync();
    // Removes everything beneath the directory, then the directory and the parents it
    // created. Never follows a symbolic link.
    void discard() noexcept;

private:
    // The directory holding `rel` (a borrowed descriptor), and rel's last component.
    int parent_of(const std::string& rel, std::string& leaf);
    std::string shown(const std::string& rel) const;
    void forget_parent() noexcept;

    std::string path_;
    int fd_ = -1;
    bool created_ = false;
    std::vector<std::string> created_parents_;  // outermost first
    std::string cached_parent_;
    int cached_fd_ = -1;
};

}  // namespace warden
