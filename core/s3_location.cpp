#include "s3_location.hpp"

#include <algorithm>
#include <cctype>

#include "error.hpp"

namespace warden::s3 {

namespace {
constexpr const char* kScheme = "s3://";

[[noreturn]] void bad(const std::string& why)
{
    throw Error(sqlstate::invalid_parameter_value, why);
}

std::string trim(const std::string& s)
{
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos)
        return "";
    auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

std::string lower(std::string s)
{
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// S3's bucket naming rules (3-63 characters of lower-case letters, digits, "." and "-",
// starting and ending with a letter or digit): a name outside them is a typo, and saying so
// beats the store's "InvalidBucketName" or a DNS failure.
bool valid_bucket(const std::string& b)
{
    if (b.size() < 3 || b.size() > 63)
        return false;
    for (char c : b)
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
              c == '.' || c == '-'))
            return false;
    auto edge = [](char c) { return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); };
    return edge(b.front()) && edge(b.back()) && b.find("..") == std::string::npos;
}
}  // namespace

std::string Location::key(const std::string& relative) const
{
    return prefix.empty() ? relative : relative.empty() ? prefix : prefix + "/" + relative;
}

std::string Location::url() const { return kScheme + bucket + (prefix.empty() ? "" : "/" + prefix); }

bool is_s3_url(const std::string& dir) { return dir.rfind(kScheme, 0) == 0; }

Location parse_url(const std::string& url)
{
    if (!is_s3_url(url))
        bad("\"" + url + "\" is not an s3://BUCKET/PREFIX URL");
    std::string rest = url.substr(std::char_traits<char>::length(kScheme));
    auto slash = rest.find('/');
    Location loc;
    loc.bucket = rest.substr(0, slash);
    if (loc.bucket.empty())
        bad("\"" + url + "\" names no bucket: write s3://BUCKET/PREFIX");
    if (!valid_bucket(loc.bucket))
        bad("\"" + loc.bucket + "\" is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')");
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/')
        prefix.pop_back();
    if (!prefix.empty()) {
        std::size_t start = 0;
        for (;;) {
            auto end = prefix.find('/', start);
            std::string seg = prefix.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (seg.empty() || seg == "." || seg == "..")
                bad("\"" + url + "\" has an empty, \".\" or \"..\" part in its prefix");
            for (char c : seg)
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\')
                    bad("\"" + url + "\" has a control character or backslash in its prefix");
            if (end == std::string::npos)
                break;
            start = end + 1;
        }
    }
    loc.prefix = prefix;
    return loc;
}

std::map<std::string, std::map<std::string, std::string>> parse_ini(const std::string& text)
{
    std::map<std::string, std::map<std::string, std::string>> out;
    std::string section;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        std::string line = trim(text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
        pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
        if (line.empty() || line[0] == '#' || line[0] == ';')
            continue;
        if (line.front() == '[' && line.back() == ']') {
            section = trim(line.substr(1, line.size() - 2));
            continue;
        }
        auto eq = line.find('=');
        if (eq == std::string::npos || section.empty())
            continue;
        out[section][lower(trim(line.substr(0, eq)))] = trim(line.substr(eq + 1));
    }
    return out;
}

Settings resolve_settings(const EnvLookup& env, const std::optional<std::string>& credentials_text,
                          const std::string& credentials_name,
                          const std::optional<std::string>& config_text, const std::string& config_name)
{
    auto get = [&](const char* name) -> std::string {
        auto v = env(name);
        return v ? trim(*v) : "";
    };
    std::string profile = get("AWS_PROFILE");
    if (profile.empty())
        profile = "default";
    std::map<std::string, std::string> cred, conf;
    if (credentials_text) {
        auto ini = parse_ini(*credentials_text);
        if (auto it = ini.find(profile); it != ini.end())
            cred = it->second;
    }
    if (config_text) {
        auto ini = parse_ini(*config_text);
        auto it = ini.find(profile == "default" ? "default" : "profile " + profile);
        if (it != ini.end())
            conf = it->second;
    }
    auto from = [](const std::map<std::string, std::string>& m, const char* key) {
        auto it = m.find(key);
        return it == m.end() ? std::string() : it->second;
    };

    Settings s;
    s.access_key = get("AWS_ACCESS_KEY_ID");
    s.secret_key = get("AWS_SECRET_ACCESS_KEY");
    if (!s.access_key.empty() || !s.secret_key.empty()) {
        if (s.access_key.empty() || s.secret_key.empty())
            bad("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
        s.session_token = get("AWS_SESSION_TOKEN");
        s.credentials_from = "environment";
    } else {
        // The credentials file first, then the config file (the AWS CLI reads keys there too).
        for (const auto* m : {&cred, &conf}) {
            s.access_key = from(*m, "aws_access_key_id");
            s.secret_key = from(*m, "aws_secret_access_key");
            if (!s.access_key.empty() && !s.secret_key.empty()) {
                s.session_token = from(*m, "aws_session_token");
                s.credentials_from = (m == &cred ? credentials_name : config_name) + " [" + profile + "]";
                break;
            }
        }
        if (s.access_key.empty() || s.secret_key.empty())
            bad("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in profile \"" +
                profile + "\" of " + credentials_name);
    }

    s.region = get("AWS_REGION");
    if (s.region.empty())
        s.region = get("AWS_DEFAULT_REGION");
    if (s.region.empty())
        s.region = from(conf, "region");
    if (s.region.empty())
        s.region = "us-east-1";
    for (char c : s.region)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
            bad("invalid region \"" + s.region + "\"");

    std::string endpoint = get("AWS_ENDPOINT_URL_S3");
    if (endpoint.empty())
        endpoint = get("AWS_ENDPOINT_URL");
    if (endpoint.empty())
        endpoint = from(conf, "endpoint_url");
    bool custom = !endpoint.empty();
    if (!custom)
        endpoint = "https://s3." + s.region + ".amazonaws.com";
    while (!endpoint.empty() && endpoint.back() == '/')
        endpoint.pop_back();
    if (endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0)
        bad("the S3 endpoint \"" + endpoint + "\" is not an http:// or https:// URL");
    auto host_start = endpoint.find("://") + 3;
    if (endpoint.size() == host_start || endpoint.find_first_of("/?#@ ", host_start) != std::string::npos)
        bad("the S3 endpoint \"" + endpoint + "\" must be scheme://host[:port] only");
    s.endpoint = endpoint;

    std::string style = lower(get("AWS_S3_ADDRESSING_STYLE"));
    if (style.empty())
        style = lower(from(conf, "addressing_style"));
    if (style.empty() || style == "auto")
        s.path_style = custom;
    else if (style == "path")
        s.path_style = true;
    else if (style == "virtual")
        s.path_style = false;
    else
        bad("AWS_S3_ADDRESSING_STYLE must be path or virtual, not \"" + style + "\"");
    return s;
}

std::string uri_encode(const std::string& s, bool encode_slash)
{
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() * 3);
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encode_slash)) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string canonical_query(std::vector<std::pair<std::string, std::string>> params)
{
    for (auto& [k, v] : params) {
        k = uri_encode(k, true);
        v = uri_encode(v, true);
    }
    std::sort(params.begin(), params.end());
    std::string out;
    for (const auto& [k, v] : params) {
        if (!out.empty())
            out += '&';
        out += k + "=" + v;
    }
    return out;
}

std::string object_url(const Settings& s, const std::string& bucket, const std::string& key,
                       const std::string& query)
{
    std::string url;
    if (s.path_style) {
        url = s.endpoint + "/" + bucket;
        if (!key.empty())
            url += "/" + uri_encode(key, false);
    } else {
        auto host_start = s.endpoint.find("://") + 3;
        url = s.endpoint.substr(0, host_start) + bucket + "." + s.endpoint.substr(host_start) + "/" +
              uri_encode(key, false);
    }
    if (!query.empty())
        url += "?" + query;
    return url;
}

}  // namespace warden::s3
