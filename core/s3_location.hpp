// Where an S3 repository is and how to reach it: the s3://BUCKET/PREFIX form of --dir,
// and the endpoint, region, addressing style and credentials taken from the environment
// and the AWS shared files (~/.aws/credentials, ~/.aws/config), the way the AWS CLI
// takes them. Pure logic: the caller supplies the environment and the files' text.
// Credentials never come from the command line and never appear in a message.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace warden::s3 {

// "s3://bucket/some/prefix": the bucket and the prefix without leading or trailing "/".
struct Location {
    std::string bucket;
    std::string prefix;
    // "prefix/key", or "key" when there is no prefix.
    std::string key(const std::string& relative) const;
    std::string url() const;  // s3://bucket/prefix, for messages
};

// True when --dir names an object store rather than a folder.
bool is_s3_url(const std::string& dir);

// Throws warden::Error (22023) with a one-line reason for a malformed URL: no bucket, a
// bucket name S3 would refuse, "." or ".." or empty segments in the prefix.
Location parse_url(const std::string& url);

struct Settings {
    std::string endpoint;       // scheme://host[:port], no trailing "/"
    std::string region;
    bool path_style = false;    // https://endpoint/bucket/key instead of https://bucket.endpoint/key
    std::string access_key;
    std::string secret_key;
    std::string session_token;  // empty unless temporary credentials
    std::string credentials_from;  // "environment" or "<file> [profile]", never the secret
};

// Looks a variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Environment first (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_DEFAULT_REGION,
// AWS_S3_ADDRESSING_STYLE=path|virtual, AWS_PROFILE), then the profile's section of the
// credentials file and of the config file ("[profile NAME]" or "[default]"; keys
// aws_access_key_id, aws_secret_access_key, aws_session_token, region, endpoint_url,
// addressing_style). Without an endpoint: AWS, https://s3.REGION.amazonaws.com with
// virtual-hosted addressing; with one (Ceph, MinIO): path-style. Region defaults to
// us-east-1. Throws warden::Error (22023) when no credentials are found or the
// endpoint is not an http(s) URL.
Settings resolve_settings(const EnvLookup& env, const std::optional<std::string>& credentials_text,
                          const std::string& credentials_name,
                          const std::optional<std::string>& config_text, const std::string& config_name);

// INI sections as the AWS files write them: section -> key -> value (keys lower-cased,
// values trimmed; "#" and ";" comment lines skipped).
std::map<std::string, std::map<std::string, std::string>> parse_ini(const std::string& text);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters as they are; "/"
// kept when encode_slash is false (object keys in a path).
std::string uri_encode(const std::string& s, bool encode_slash);

// The query string SigV4 signs: pairs sorted by name then value, each side encoded,
// always "name=value" (an empty value too).
std::string canonical_query(std::vector<std::pair<std::string, std::string>> params);

// The URL of an object (or of the bucket when key is empty), query appended when given.
std::string object_url(const Settings& s, const std::string& bucket, const std::string& key,
                       const std::string& query);

}  // namespace warden::s3
