// Where backups and WAL are kept: a local folder or an object store bucket, behind one
// small interface of whole-object operations (keys are "/"-separated paths relative to
// the repository: "wal/000000010000000000000003.zst", "20261205T071500Z/backup.json").
//
// Commands keep working on local folders as before; for a remote repository they work in
// a private scratch folder (Scratch) and move objects in and out through this interface:
// see remote_wal.hpp and remote_backup.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "s3_client.hpp"

namespace warden::repo {

class Repository {
public:
    virtual ~Repository() = default;
    // s3://bucket/prefix or the folder, for messages.
    virtual std::string describe() const = 0;
    // nullopt when the object does not exist; larger than `limit` is an error.
    virtual std::optional<std::string> read(const std::string& key, std::uint64_t limit) = 0;
    // Copies an object into a new file `dest`; false when the object does not exist.
    virtual bool download(const std::string& key, const std::filesystem::path& dest) = 0;
    // Makes an object visible whole or not at all.
    virtual void write(const std::string& key, const std::string& bytes) = 0;
    virtual void upload(const std::string& key, const std::filesystem::path& source) = 0;
    // Every object whose key starts with `sub`, sorted by key.
    virtual std::vector<ObjectInfo> list(const std::string& sub) = 0;
    virtual void remove(const std::string& key) = 0;
    // Uploads started but neither completed nor aborted (object stores only).
    virtual std::vector<IncompleteUpload> incomplete_uploads(const std::string& sub) = 0;
    virtual void abort_upload(const IncompleteUpload& upload) = 0;
};

// True for --dir values that name a remote repository (s3://...).
bool is_remote(const std::string& dir);

// A folder, or s3://BUCKET/PREFIX with settings from the environment and ~/.aws.
std::unique_ptr<Repository> open_repository(const std::string& dir);

// A private folder (0700) under $TMPDIR (default /tmp), removed with everything in it
// when this goes out of scope.
class Scratch {
public:
    Scratch();
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace warden::repo
