#include "repository.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "backup_common.hpp"
#include "error.hpp"
#include "wal_archive.hpp"

namespace warden::repo {

namespace fs = std::filesystem;

namespace {

// Keys come from listings of a store anyone with write access to the bucket can fill:
// only plain relative paths are used as local names.
void check_key(const std::string& key)
{
    bool bad = key.empty() || key.front() == '/' || key.find('\0') != std::string::npos;
    std::size_t start = 0;
    while (!bad) {
        auto end = key.find('/', start);
        std::string seg = key.substr(start, end == std::string::npos ? std::string::npos : end - start);
        bad = seg.empty() || seg == "." || seg == "..";
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    if (bad)
        throw Error(sqlstate::data_exception, "refusing the object name \"" + key + "\"");
}

class LocalRepository : public Repository {
public:
    explicit LocalRepository(fs::path root) : root_(std::move(root)) {}
    std::string describe() const override { return root_.string(); }

    std::optional<std::string> read(const std::string& key, std::uint64_t limit) override
    {
        check_key(key);
        std::error_code ec;
        fs::path p = root_ / key;
        if (!fs::exists(fs::symlink_status(p, ec)))
            return std::nullopt;
        if (!fs::is_regular_file(fs::symlink_status(p)) || fs::file_size(p) > limit)
            throw Error(sqlstate::data_exception, "\"" + p.string() + "\" is not a regular file of at most " +
                                                      std::to_string(limit) + " bytes");
        return walarchive::read_file(p);
    }

    bool download(const std::string& key, const fs::path& dest) override
    {
        auto bytes = read(key, UINT64_MAX);
        if (!bytes)
            return false;
        walarchive::write_file_durably(dest.parent_path(), dest.filename().string(), *bytes);
        return true;
    }

    void write(const std::string& key, const std::string& bytes) override
    {
        check_key(key);
        fs::path p = root_ / key;
        fs::create_directories(p.parent_path());
        walarchive::write_file_durably(p.parent_path(), p.filename().string(), bytes);
    }

    void upload(const std::string& key, const fs::path& source) override
    {
        write(key, walarchive::read_file(source));
    }

    std::vector<ObjectInfo> list(const std::string& sub) override
    {
        std::vector<ObjectInfo> out;
        std::error_code ec;
        if (!fs::is_directory(root_, ec))
            return out;
        for (auto it = fs::recursive_directory_iterator(root_); it != fs::recursive_directory_iterator(); ++it) {
            if (!it->is_regular_file(ec))
                continue;
            std::string key = fs::relative(it->path(), root_).string();
            if (key.rfind(sub, 0) != 0)
                continue;
            auto t = fs::last_write_time(it->path(), ec);
            auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                t - fs::file_time_type::clock::now() + std::chrono::system_clock::now().time_since_epoch());
            out.push_back({key, it->file_size(ec), static_cast<std::time_t>(secs.count())});
        }
        std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
        return out;
    }

    void remove(const std::string& key) override
    {
        check_key(key);
        std::error_code ec;
        fs::remove(root_ / key, ec);
        if (ec)
            throw Error("58030", "could not remove \"" + (root_ / key).string() + "\": " + ec.message());
    }

    std::vector<IncompleteUpload> incomplete_uploads(const std::string&) override { return {}; }
    void abort_upload(const IncompleteUpload&) override {}

private:
    fs::path root_;
};

class S3Repository : public Repository {
public:
    explicit S3Repository(const std::string& url)
        : client_(s3::parse_url(url), settings_from_environment()) {}
    std::string describe() const override { return client_.location().url(); }
    std::optional<std::string> read(const std::string& key, std::uint64_t limit) override
    {
        return client_.get(key, limit);
    }
    bool download(const std::string& key, const fs::path& dest) override
    {
        check_key(key);
        return client_.get_to_file(key, dest);
    }
    void write(const std::string& key, const std::string& bytes) override { client_.put(key, bytes); }
    void upload(const std::string& key, const fs::path& source) override { client_.put_file(key, source); }
    std::vector<ObjectInfo> list(const std::string& sub) override { return client_.list(sub); }
    void remove(const std::string& key) override { client_.remove(key); }
    std::vector<IncompleteUpload> incomplete_uploads(const std::string& sub) override
    {
        return client_.incomplete_uploads(sub);
    }
    void abort_upload(const IncompleteUpload& u) override { client_.abort_upload(u.key, u.upload_id); }

private:
    S3Client client_;
};

}  // namespace

bool is_remote(const std::string& dir) { return s3::is_s3_url(dir); }

std::unique_ptr<Repository> open_repository(const std::string& dir)
{
    if (is_remote(dir))
        return std::make_unique<S3Repository>(dir);
    return std::make_unique<LocalRepository>(dir);
}

Scratch::Scratch()
{
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/warden-repo.XXXXXX";
    if (!::mkdtemp(templ.data()))
        throw Error("58030", "could not create a scratch folder in " + fs::path(templ).parent_path().string() +
                                 ": " + std::strerror(errno));
    path_ = templ;
}

Scratch::~Scratch() { remove_tree(path_.string()); }

}  // namespace warden::repo
