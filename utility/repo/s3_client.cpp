#include "s3_client.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "backoff.hpp"
#include "backup_common.hpp"
#include "checksum.hpp"
#include "error.hpp"

namespace warden::repo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Error bodies are small XML documents; anything beyond this is not worth keeping.
constexpr std::size_t kErrorBodyLimit = 64 * 1024;

// A failure below HTTP: refused connection, reset, timeout, DNS.
struct TransportError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

long env_long(const char* name, long fallback, long lo, long hi)
{
    const char* v = std::getenv(name);
    if (!v || !*v)
        return fallback;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end || n < lo || n > hi)
        throw Error(sqlstate::invalid_parameter_value,
                    std::string(name) + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return n;
}

std::optional<std::string> read_config_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::string text;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > 1024 * 1024)
            throw Error(sqlstate::invalid_parameter_value, path + " is larger than 1 MB");
    }
    return text;
}

std::string home_dir()
{
    if (const char* h = std::getenv("HOME"); h && *h)
        return h;
    if (const passwd* pw = ::getpwuid(::geteuid()))
        return pw->pw_dir;
    return "";
}

// libxml2 over an S3 response: the text of child elements of every `element`.
using Record = std::map<std::string, std::string>;

void collect(xmlNode* node, const char* element, std::vector<Record>& out)
{
    for (xmlNode* n = node; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (std::strcmp(reinterpret_cast<const char*>(n->name), element) == 0) {
            Record r;
            for (xmlNode* c = n->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                    continue;
                xmlChar* t = xmlNodeGetContent(c);
                r[reinterpret_cast<const char*>(c->name)] = t ? reinterpret_cast<const char*>(t) : "";
                xmlFree(t);
            }
            out.push_back(std::move(r));
        } else {
            collect(n->children, element, out);
        }
    }
}

std::vector<Record> xml_records(const std::string& body, const char* element)
{
    std::vector<Record> out;
    xmlDocPtr doc = xmlReadMemory(body.data(), static_cast<int>(body.size()), "s3.xml", nullptr,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return out;
    // The root itself may be the element (an <Error> document).
    xmlNode* root = xmlDocGetRootElement(doc);
    collect(root, element, out);
    xmlFreeDoc(doc);
    return out;
}

// The top-level elements of a response (ListBucketResult's IsTruncated, UploadId, ...).
Record xml_root_fields(const std::string& body, std::string* root_name = nullptr)
{
    Record r;
    xmlDocPtr doc = xmlReadMemory(body.data(), static_cast<int>(body.size()), "s3.xml", nullptr,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return r;
    xmlNode* root = xmlDocGetRootElement(doc);
    if (root) {
        if (root_name)
            *root_name = reinterpret_cast<const char*>(root->name);
        for (xmlNode* c = root->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE || r.count(reinterpret_cast<const char*>(c->name)))
                continue;
            xmlChar* t = xmlNodeGetContent(c);
            r[reinterpret_cast<const char*>(c->name)] = t ? reinterpret_cast<const char*>(t) : "";
            xmlFree(t);
        }
    }
    xmlFreeDoc(doc);
    return r;
}

std::time_t parse_iso_time(const std::string& s)
{
    std::tm tm{};
    if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return timegm(&tm);
}

std::string sha256_of(const char* p, std::size_t n)
{
    Sha256 h;
    h.update(p, n);
    return h.hex_digest();
}

// One libcurl handle per thread, reused so connections stay open between requests.
struct Handle {
    CURL* h = curl_easy_init();
    ~Handle() { curl_easy_cleanup(h); }
};

CURL* thread_handle()
{
    thread_local Handle handle;
    if (!handle.h)
        throw Error(sqlstate::out_of_memory, "could not create an HTTP handle");
    curl_easy_reset(handle.h);
    return handle.h;
}

struct Upload {
    const char* data;
    std::size_t size;
    std::size_t pos = 0;
};

size_t read_body(char* buf, size_t size, size_t n, void* ud)
{
    auto* u = static_cast<Upload*>(ud);
    std::size_t k = std::min(size * n, u->size - u->pos);
    std::memcpy(buf, u->data + u->pos, k);
    u->pos += k;
    return k;
}

int seek_body(void* ud, curl_off_t offset, int origin)
{
    auto* u = static_cast<Upload*>(ud);
    if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > u->size)
        return CURL_SEEKFUNC_FAIL;
    u->pos = static_cast<std::size_t>(offset);
    return CURL_SEEKFUNC_OK;
}

struct Sink {
    CURL* h;
    std::string* body;
    int fd;                 // a successful response's body goes here when >= 0
    std::uint64_t limit;    // most bytes accepted into body
    bool too_large = false;
    bool write_failed = false;
    std::string* etag;
};

size_t write_body(char* p, size_t size, size_t n, void* ud)
{
    auto* s = static_cast<Sink*>(ud);
    std::size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (s->fd >= 0 && status / 100 == 2) {
        std::size_t done = 0;
        while (done < len) {
            ssize_t w = ::write(s->fd, p + done, len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                s->write_failed = true;
                return 0;
            }
            done += static_cast<std::size_t>(w);
        }
        return len;
    }
    std::uint64_t limit = status / 100 == 2 ? s->limit : kErrorBodyLimit;
    if (s->body->size() + len > limit) {
        s->too_large = true;
        return 0;
    }
    s->body->append(p, len);
    return len;
}

size_t read_header(char* p, size_t size, size_t n, void* ud)
{
    auto* s = static_cast<Sink*>(ud);
    std::string line(p, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        if (name == "etag") {
            std::string v = line.substr(colon + 1);
            v.erase(0, v.find_first_not_of(" \t"));
            v.erase(v.find_last_not_of(" \t\r\n") + 1);
            *s->etag = v;
        }
    }
    return size * n;
}

bool retryable(long status) { return status >= 500 || status == 429 || status == 408; }

std::once_flag curl_init_once;
}  // namespace

struct S3Client::Request {
    std::string method = "GET";
    std::string key;  // full key; empty for the bucket itself
    std::vector<std::pair<std::string, std::string>> query;
    const char* body = nullptr;
    std::size_t body_len = 0;
    std::uint64_t limit = kErrorBodyLimit;
    std::string what;  // s3://bucket/key, for messages
};

s3::Settings settings_from_environment()
{
    auto env = [](const std::string& k) -> std::optional<std::string> {
        const char* v = std::getenv(k.c_str());
        if (!v)
            return std::nullopt;
        return std::string(v);
    };
    std::string home = home_dir();
    std::string cred = env("AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
    std::string conf = env("AWS_CONFIG_FILE").value_or(home + "/.aws/config");
    return s3::resolve_settings(env, read_config_file(cred), cred, read_config_file(conf), conf);
}

S3Client::S3Client(s3::Location where, s3::Settings settings)
    : where_(std::move(where)), settings_(std::move(settings))
{
    std::call_once(curl_init_once, [] {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        xmlInitParser();
    });
    sigv4_ = "aws:amz:" + settings_.region + ":s3";
    retries_ = static_cast<int>(env_long("WARDEN_S3_RETRIES", 5, 0, 100));
    part_size_ = static_cast<std::uint64_t>(env_long("WARDEN_S3_PART_SIZE_MB", 16, 5, 5120)) * 1024 * 1024;
    jobs_ = static_cast<int>(env_long("WARDEN_S3_JOBS", 4, 1, 64));
    // Per connection: a backup must not take the whole uplink of a database server.
    max_send_bytes_ = env_long("WARDEN_S3_MAX_RATE_KB", 0, 0, 100L * 1024 * 1024) * 1024;
    // The AWS CLI's variable for a private CA (a Ceph or MinIO with its own certificate).
    if (const char* ca = std::getenv("AWS_CA_BUNDLE"); ca && *ca)
        ca_bundle_ = ca;
}

S3Client::Response S3Client::perform(const Request& r, int fd_out)
{
    CURL* h = thread_handle();
    Response res;
    std::string url = s3::object_url(settings_, where_.bucket, r.key, s3::canonical_query(r.query));
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, settings_.access_key.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, settings_.secret_key.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    // No overall timeout (a 1 GB part may take long); a stalled transfer is a timeout.
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, env_long("WARDEN_S3_STALL_SECONDS", 60, 1, 3600));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    if (!ca_bundle_.empty())
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_bundle_.c_str());
    if (max_send_bytes_ > 0)
        curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, static_cast<curl_off_t>(max_send_bytes_));

    // libcurl signs the x-amz-* headers it is given; S3 wants the payload's SHA-256 signed too.
    std::string payload_hash = r.body_len ? sha256_of(r.body, r.body_len) : kEmptySha256;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, ("x-amz-content-sha256: " + payload_hash).c_str());
    if (!settings_.session_token.empty())
        headers = curl_slist_append(headers, ("x-amz-security-token: " + settings_.session_token).c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    Upload up{r.body, r.body_len};
    if (r.method == "PUT" || r.method == "POST") {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_body);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &up);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body_len));
        if (r.method == "POST")
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
    } else if (r.method == "HEAD") {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (r.method != "GET") {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    Sink sink{h, &res.body, fd_out, r.limit, false, false, &res.etag};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res.status);
    if (sink.too_large)
        throw Error(sqlstate::data_exception,
                    r.what + " is larger than the " + std::to_string(r.limit) + " bytes it may have");
    if (sink.write_failed)
        throw Error(errno == ENOSPC ? "53100" : "58030",
                    "could not write what " + r.what + " holds: " + std::strerror(errno));
    if (rc != CURLE_OK)
        throw TransportError(curl_easy_strerror(rc));
    curl_off_t len = 0;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK && len > 0)
        res.length = static_cast<std::uint64_t>(len);
    curl_off_t ft = -1;
    if (curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ft) == CURLE_OK && ft > 0)
        res.modified = static_cast<std::time_t>(ft);
    return res;
}

S3Client::Response S3Client::call(const Request& r, int fd_out)
{
    for (int attempt = 0;; ++attempt) {
        std::string why;
        try {
            Response res = perform(r, fd_out);
            if (!retryable(res.status) || attempt >= retries_)
                return res;
            auto code = xml_root_fields(res.body)["Code"];
            why = "HTTP " + std::to_string(res.status) + (code.empty() ? "" : " " + code);
        } catch (const TransportError& e) {
            if (attempt >= retries_)
                throw Error("08006", r.method + " " + r.what + " failed after " + std::to_string(attempt + 1) +
                                         " attempts: " + e.what() + " (" + settings_.endpoint + ")");
            why = e.what();
        }
        throw_if_interrupted();
        if (fd_out >= 0 && (::ftruncate(fd_out, 0) != 0 || ::lseek(fd_out, 0, SEEK_SET) != 0))
            throw Error("58030", "could not rewind the download of " + r.what + ": " + std::strerror(errno));
        long delay = backoff_delay_ms(attempt + 1, 250, 8000);
        if (std::getenv("WARDEN_S3_DEBUG"))
            std::fprintf(stderr, "warden: %s %s: %s; retrying in %ld ms\n", r.method.c_str(), r.what.c_str(),
                         why.c_str(), delay);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
}

void S3Client::fail(const Request& r, const Response& res)
{
    auto fields = xml_root_fields(res.body);
    std::string code = fields["Code"];
    std::string text = r.method + " " + r.what + ": HTTP " + std::to_string(res.status) +
                       (code.empty() ? "" : " " + code);
    if (!fields["Message"].empty())
        text += " (" + fields["Message"] + ")";
    if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "AccessDenied" ||
        res.status == 403)
        throw Error("28000", "the object store refused " + text + ": check the credentials (from " +
                                 settings_.credentials_from + ") and the bucket policy");
    if (code == "NoSuchBucket")
        throw Error("58030", "bucket \"" + where_.bucket + "\" does not exist at " + settings_.endpoint);
    throw Error("58030", "the object store failed " + text);
}

void S3Client::check_access()
{
    Request r;
    r.what = "s3://" + where_.bucket;
    r.query = {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", where_.prefix}};
    Response res = call(r);
    if (res.status != 200)
        fail(r, res);
}

std::optional<std::string> S3Client::get(const std::string& key, std::uint64_t limit)
{
    Request r;
    r.key = full_key(key);
    r.what = url(key);
    r.limit = limit;
    Response res = call(r);
    if (res.status == 404 && xml_root_fields(res.body)["Code"] != "NoSuchBucket")
        return std::nullopt;
    if (res.status != 200)
        fail(r, res);
    return res.body;
}

bool S3Client::get_to_file(const std::string& key, const fs::path& dest)
{
    int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error("58030", "could not create \"" + dest.string() + "\": " + std::strerror(errno));
    Request r;
    r.key = full_key(key);
    r.what = url(key);
    try {
        Response res = call(r, fd);
        if (res.status == 404 && xml_root_fields(res.body)["Code"] != "NoSuchBucket") {
            ::close(fd);
            ::unlink(dest.c_str());
            return false;
        }
        if (res.status != 200)
            fail(r, res);
    } catch (...) {
        ::close(fd);
        ::unlink(dest.c_str());
        throw;
    }
    if (::close(fd) != 0)
        throw Error("58030", "could not write \"" + dest.string() + "\": " + std::strerror(errno));
    return true;
}

void S3Client::put(const std::string& key, const std::string& bytes)
{
    Request r;
    r.method = "PUT";
    r.key = full_key(key);
    r.what = url(key);
    r.body = bytes.data();
    r.body_len = bytes.size();
    Response res = call(r);
    if (res.status != 200)
        fail(r, res);
}

std::optional<ObjectInfo> S3Client::head(const std::string& key)
{
    Request r;
    r.method = "HEAD";
    r.key = full_key(key);
    r.what = url(key);
    Response res = call(r);
    if (res.status == 404)
        return std::nullopt;
    if (res.status != 200)
        fail(r, res);
    return ObjectInfo{key, res.length, res.modified};
}

void S3Client::put_file(const std::string& key, const fs::path& source)
{
    struct stat st;
    if (::lstat(source.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        throw Error("58030", "\"" + source.string() + "\" is not a regular file");
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > part_size_) {
        multipart(key, source, size);
        return;
    }
    int fd = ::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        throw Error("58030", "could not open \"" + source.string() + "\": " + std::strerror(errno));
    std::string bytes(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ::close(fd);
            throw Error("58030", "could not read \"" + source.string() + "\"");
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    put(key, bytes);
}

void S3Client::multipart(const std::string& key, const fs::path& source, std::uint64_t size)
{
    Request init;
    init.method = "POST";
    init.key = full_key(key);
    init.what = url(key);
    init.query = {{"uploads", ""}};
    Response res = call(init);
    if (res.status != 200)
        fail(init, res);
    std::string upload_id = xml_root_fields(res.body)["UploadId"];
    if (upload_id.empty())
        throw Error("58030", "the object store started no multipart upload for " + url(key));

    int fd = ::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        abort_upload(key, upload_id);
        throw Error("58030", "could not open \"" + source.string() + "\": " + std::strerror(e));
    }
    const std::uint64_t parts = (size + part_size_ - 1) / part_size_;
    std::vector<std::string> etags(parts);
    std::atomic<std::uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::exception_ptr first_error;

    auto worker = [&] {
        std::string buf;
        try {
            for (;;) {
                if (failed)
                    return;
                std::uint64_t i = next++;
                if (i >= parts)
                    return;
                throw_if_interrupted();
                std::uint64_t off = i * part_size_;
                std::size_t len = static_cast<std::size_t>(std::min(part_size_, size - off));
                buf.resize(len);
                std::size_t done = 0;
                while (done < len) {
                    ssize_t n = ::pread(fd, buf.data() + done, len - done, static_cast<off_t>(off + done));
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n <= 0)
                        throw Error("58030", "could not read \"" + source.string() + "\"");
                    done += static_cast<std::size_t>(n);
                }
                Request part;
                part.method = "PUT";
                part.key = full_key(key);
                part.what = url(key) + " (part " + std::to_string(i + 1) + ")";
                part.query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}};
                part.body = buf.data();
                part.body_len = len;
                Response pr = call(part);
                if (pr.status != 200)
                    fail(part, pr);
                if (pr.etag.empty())
                    throw Error("58030", "the object store returned no ETag for " + part.what);
                etags[i] = pr.etag;
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!first_error)
                first_error = std::current_exception();
            failed = true;
        }
    };
    int n_threads = static_cast<int>(std::min<std::uint64_t>(parts, static_cast<std::uint64_t>(jobs_)));
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t)
        threads.emplace_back(worker);
    for (auto& t : threads)
        t.join();
    ::close(fd);

    try {
        if (first_error)
            std::rethrow_exception(first_error);
        std::string xml = "<CompleteMultipartUpload>";
        for (std::uint64_t i = 0; i < parts; ++i)
            xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i] +
                   "</ETag></Part>";
        xml += "</CompleteMultipartUpload>";
        Request done;
        done.method = "POST";
        done.key = full_key(key);
        done.what = url(key);
        done.query = {{"uploadId", upload_id}};
        done.body = xml.data();
        done.body_len = xml.size();
        Response cr = call(done);
        // The store may answer 200 and report the failure in the body.
        std::string root;
        auto fields = xml_root_fields(cr.body, &root);
        if (cr.status != 200 || root == "Error")
            fail(done, cr);
    } catch (...) {
        // No orphaned parts: the store keeps (and bills) them until the upload is aborted.
        try {
            abort_upload(key, upload_id);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "warden: could not abort the multipart upload of %s: %s\n", url(key).c_str(),
                         e.what());
        }
        throw;
    }
}

std::vector<ObjectInfo> S3Client::list(const std::string& sub)
{
    std::vector<ObjectInfo> out;
    std::string prefix = where_.prefix.empty() ? sub : where_.prefix + "/" + sub;
    std::size_t strip = where_.prefix.empty() ? 0 : where_.prefix.size() + 1;
    std::string token;
    for (;;) {
        Request r;
        r.what = "s3://" + where_.bucket + "/" + prefix;
        r.query = {{"list-type", "2"}, {"prefix", prefix}};
        if (!token.empty())
            r.query.emplace_back("continuation-token", token);
        r.limit = 64 * 1024 * 1024;
        Response res = call(r);
        if (res.status != 200)
            fail(r, res);
        for (auto& c : xml_records(res.body, "Contents")) {
            const std::string& k = c["Key"];
            if (k.size() <= strip)
                continue;
            out.push_back({k.substr(strip), std::strtoull(c["Size"].c_str(), nullptr, 10),
                           parse_iso_time(c["LastModified"])});
        }
        auto top = xml_root_fields(res.body);
        if (top["IsTruncated"] != "true")
            break;
        token = top["NextContinuationToken"];
        if (token.empty())
            throw Error("58030", "the object store truncated a listing of " + r.what + " without a continuation token");
    }
    std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
}

void S3Client::remove(const std::string& key)
{
    Request r;
    r.method = "DELETE";
    r.key = full_key(key);
    r.what = url(key);
    Response res = call(r);
    if (res.status != 204 && res.status != 200 && res.status != 404)
        fail(r, res);
}

std::vector<IncompleteUpload> S3Client::incomplete_uploads(const std::string& sub)
{
    std::vector<IncompleteUpload> out;
    std::string prefix = where_.prefix.empty() ? sub : where_.prefix + "/" + sub;
    std::size_t strip = where_.prefix.empty() ? 0 : where_.prefix.size() + 1;
    std::string key_marker, id_marker;
    for (;;) {
        Request r;
        r.what = "s3://" + where_.bucket + "/" + prefix;
        r.query = {{"uploads", ""}, {"prefix", prefix}};
        if (!key_marker.empty()) {
            r.query.emplace_back("key-marker", key_marker);
            r.query.emplace_back("upload-id-marker", id_marker);
        }
        r.limit = 64 * 1024 * 1024;
        Response res = call(r);
        if (res.status != 200)
            fail(r, res);
        for (auto& u : xml_records(res.body, "Upload")) {
            if (u["Key"].size() <= strip)
                continue;
            out.push_back({u["Key"].substr(strip), u["UploadId"], parse_iso_time(u["Initiated"])});
        }
        auto top = xml_root_fields(res.body);
        if (top["IsTruncated"] != "true")
            break;
        key_marker = top["NextKeyMarker"];
        id_marker = top["NextUploadIdMarker"];
        if (key_marker.empty())
            break;
    }
    return out;
}

void S3Client::abort_upload(const std::string& key, const std::string& upload_id)
{
    Request r;
    r.method = "DELETE";
    r.key = full_key(key);
    r.what = url(key) + " (multipart upload)";
    r.query = {{"uploadId", upload_id}};
    Response res = call(r);
    if (res.status != 204 && res.status != 200 && res.status != 404)
        fail(r, res);
}

}  // namespace warden::repo
