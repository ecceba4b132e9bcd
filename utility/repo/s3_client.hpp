// An S3 client on libcurl: requests signed with AWS Signature Version 4 by libcurl itself
// (CURLOPT_AWS_SIGV4), responses parsed with libxml2. Retries with exponential backoff on
// connection failures, timeouts, 5xx and 429; large files go up as parallel multipart
// uploads that are aborted on failure. See docs/object-storage.md for why not libs3.
//
// Keys passed here are relative to the repository's prefix. Messages name the object as
// s3://bucket/prefix/key and the store's error code, never a credential.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "s3_location.hpp"

namespace warden::repo {

struct ObjectInfo {
    std::string key;            // relative to the prefix
    std::uint64_t size = 0;
    std::time_t modified = 0;   // LastModified
};

struct IncompleteUpload {
    std::string key;            // relative to the prefix
    std::string upload_id;
    std::time_t initiated = 0;
};

// The environment and the AWS shared files of this account (HOME, or the files named by
// AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE).
s3::Settings settings_from_environment();

class S3Client {
public:
    S3Client(s3::Location where, s3::Settings settings);

    const s3::Location& location() const { return where_; }
    std::string url(const std::string& key) const { return "s3://" + where_.bucket + "/" + where_.key(key); }

    // Checks the bucket answers to these credentials (one signed request): a wrong key or
    // bucket fails here with the store's reason rather than halfway through a backup.
    void check_access();

    // nullopt when the object does not exist; more than `limit` bytes is an error.
    std::optional<std::string> get(const std::string& key, std::uint64_t limit);
    // Streams an object into a new file `dest` (created, never followed); false when absent.
    bool get_to_file(const std::string& key, const std::filesystem::path& dest);
    void put(const std::string& key, const std::string& bytes);
    // One PUT up to the part size, a parallel multipart upload above it.
    void put_file(const std::string& key, const std::filesystem::path& source);
    std::optional<ObjectInfo> head(const std::string& key);
    // Every object under `sub` (relative, "" for the whole prefix), recursively, by key.
    std::vector<ObjectInfo> list(const std::string& sub);
    // Deleting an absent object is not an error (S3 semantics).
    void remove(const std::string& key);
    std::vector<IncompleteUpload> incomplete_uploads(const std::string& sub);
    void abort_upload(const std::string& key, const std::string& upload_id);

private:
    struct Response {
        long status = 0;
        std::string body;
        std::string etag;
        std::uint64_t length = 0;
        std::time_t modified = 0;
    };
    struct Request;
    Response perform(const Request& r, int fd_out = -1);
    Response call(const Request& r, int fd_out = -1);
    [[noreturn]] void fail(const Request& r, const Response& res);
    std::string full_key(const std::string& key) const { return where_.key(key); }
    void multipart(const std::string& key, const std::filesystem::path& source, std::uint64_t size);

    s3::Location where_;
    s3::Settings settings_;
    std::string sigv4_;
    int retries_;
    std::uint64_t part_size_;
    int jobs_;
    std::string ca_bundle_;
    long max_send_bytes_ = 0;
};

}  // namespace warden::repo
