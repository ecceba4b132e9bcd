#include "backup_catalog.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "error.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace warden {

namespace {
json files_json(const std::vector<CatalogFile>& files)
{
    json arr = json::array();
    for (const auto& f : files)
        arr.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}});
    return arr;
}

std::vector<CatalogFile> files_from(const json& arr)
{
    std::vector<CatalogFile> out;
    for (const auto& f : arr)
        out.push_back({f.at("name").get<std::string>(), f.at("size").get<std::uint64_t>(),
                       f.at("sha256").get<std::string>()});
    return out;
}

template <typename T>
json opt(const std::optional<T>& v)
{
    return v ? json(*v) : json(nullptr);
}

template <typename T>
std::optional<T> opt_from(const json& doc, const char* key)
{
    if (!doc.contains(key) || doc.at(key).is_null())
        return std::nullopt;
    return doc.at(key).get<T>();
}

void fsync_path(const std::string& path, bool directory)
{
    int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0)
        throw Error("58030", "could not open \"" + path + "\": " + std::strerror(errno));
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    if (rc != 0)
        throw Error("58030", "could not fsync \"" + path + "\": " + std::strerror(saved));
}
}  // namespace

std::string to_json_text(const BackupInfo& b)
{
    json tbs = json::array();
    for (const auto& t : b.tablespaces)
        tbs.push_back({{"oid", t.oid}, {"location", t.location}, {"archive", t.archive}});
    json doc = {
        {"format", 1},
        {"id", b.id},
        {"kind", b.kind},
        {"label", b.label},
        {"status", b.status},
        {"started_at", b.started_at},
        {"finished_at", b.finished_at},
        {"start_lsn", b.start_lsn},
        {"stop_lsn", b.stop_lsn},
        {"timeline", b.timeline},
        {"system_identifier", b.system_identifier},
        {"server_version_num", b.server_version_num},
        {"server_version", b.server_version},
        {"database", b.database},
        {"compression", {{"method", b.compression}, {"level", b.compression_level}}},
        {"sizes", {{"original_bytes", b.original_bytes}, {"stored_bytes", b.stored_bytes}}},
        {"durations",
         {{"backup_seconds", b.backup_seconds},
          {"verify_seconds", opt(b.verify_seconds)},
          {"restore_seconds", opt(b.restore_seconds)}}},
        {"verified_at", opt(b.verified_at)},
        {"verify_ok", opt(b.verify_ok)},
        {"ledger_version", opt(b.ledger_version)},
        {"conninfo", b.conninfo},
        {"warden_version", b.warden_version},
        {"files", files_json(b.files)},
        {"wal", {{"segment_size", b.wal_segment_size}, {"segments", files_json(b.wal)}}},
        {"tablespaces", tbs},
        {"row_counts", b.row_counts},
    };
    return doc.dump(2) + "\n";
}

BackupInfo backup_info_from_json(const std::string& text)
{
    BackupInfo b;
    try {
        json doc = json::parse(text);
        if (doc.value("format", 0) != 1)
            throw Error(sqlstate::data_exception, "unsupported backup.json format");
        b.id = doc.at("id").get<std::string>();
        b.kind = doc.at("kind").get<std::string>();
        if (b.kind != "physical" && b.kind != "logical")
            throw Error(sqlstate::data_exception, "unknown backup kind \"" + b.kind + "\"");
        b.label = doc.value("label", "");
        b.status = doc.value("status", "");
        b.started_at = doc.value("started_at", "");
        b.finished_at = doc.at("finished_at").get<std::string>();
        b.start_lsn = doc.value("start_lsn", "");
        b.stop_lsn = doc.at("stop_lsn").get<std::string>();
        b.timeline = doc.value("timeline", 0u);
        b.system_identifier = doc.at("system_identifier").get<std::string>();
        b.server_version_num = doc.value("server_version_num", 0);
        b.server_version = doc.value("server_version", "");
        b.database = doc.value("database", "");
        const json& c = doc.at("compression");
        b.compression = c.at("method").get<std::string>();
        b.compression_level = c.value("level", 0);
        const json& s = doc.at("sizes");
        b.original_bytes = s.value("original_bytes", std::uint64_t{0});
        b.stored_bytes = s.value("stored_bytes", std::uint64_t{0});
        const json& d = doc.at("durations");
        b.backup_seconds = d.value("backup_seconds", 0.0);
        b.verify_seconds = opt_from<double>(d, "verify_seconds");
        b.restore_seconds = opt_from<double>(d, "restore_seconds");
        b.verified_at = opt_from<std::string>(doc, "verified_at");
        b.verify_ok = opt_from<bool>(doc, "verify_ok");
        b.ledger_version = opt_from<std::string>(doc, "ledger_version");
        b.conninfo = doc.value("conninfo", "");
        b.warden_version = doc.value("warden_version", "");
        b.files = files_from(doc.at("files"));
        if (doc.contains("wal")) {
            b.wal_segment_size = doc.at("wal").value("segment_size", std::uint64_t{0});
            b.wal = files_from(doc.at("wal").at("segments"));
        }
        for (const auto& t : doc.value("tablespaces", json::array()))
            b.tablespaces.push_back({t.at("oid").get<std::string>(),
                                     t.at("location").get<std::string>(),
                                     t.at("archive").get<std::string>()});
        if (doc.contains("row_counts"))
            b.row_counts = doc.at("row_counts").get<std::map<std::string, std::int64_t>>();
    } catch (const json::exception& e) {
        throw Error(sqlstate::data_exception, std::string("unreadable backup.json: ") + e.what());
    }
    return b;
}

static BackupInfo read_description(const fs::path& folder)
{
    std::ifstream in(folder / kDescriptionFile, std::ios::binary);
    if (!in)
        throw Error("58030", "no " + std::string(kDescriptionFile));
    std::stringstream ss;
    ss << in.rdbuf();
    BackupInfo b = backup_info_from_json(ss.str());
    if (b.id != folder.filename().string())
        throw Error(sqlstate::data_exception,
                    "backup.json names backup " + b.id + ", not its folder");
    return b;
}

CatalogListing load_catalog(const std::string& dir)
{
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw Error("58030", "backup folder \"" + dir + "\" does not exist");
    CatalogListing out;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (!entry.is_directory())
            continue;
        std::string name = entry.path().filename().string();
        if (name.rfind(kPartialPrefix, 0) == 0) {
            out.unusable.emplace_back(name, "interrupted or running backup");
            continue;
        }
        if (!valid_backup_id(name))
            continue;
        try {
            out.backups.push_back(read_description(entry.path()));
        } catch (const Error& e) {
            out.unusable.emplace_back(name, e.what());
        }
    }
    std::sort(out.backups.begin(), out.backups.end(),
              [](const BackupInfo& a, const BackupInfo& b) {
                  return std::tie(a.finished_at, a.id) < std::tie(b.finished_at, b.id);
              });
    std::sort(out.unusable.begin(), out.unusable.end());
    return out;
}

BackupInfo load_backup(const std::string& dir, const std::string& id)
{
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw Error("58030", "backup folder \"" + dir + "\" does not exist");
    if (!valid_backup_id(id) || !fs::is_directory(fs::path(dir) / id, ec))
        throw Error(sqlstate::invalid_parameter_value,
                    "unknown backup ID \"" + id + "\" in " + dir, {},
                    "warden backup list --dir " + dir + " shows the backups.");
    return read_description(fs::path(dir) / id);
}

std::string iso8601_utc(std::time_t t)
{
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<std::time_t> parse_iso8601_utc(const std::string& text)
{
    std::tm tm{};
    const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == nullptr || *end != '\0')
        return std::nullopt;
    return timegm(&tm);
}

std::string make_backup_id(std::time_t now)
{
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

bool valid_backup_id(const std::string& id)
{
    // 20261123T031500Z, optionally -N: nothing that could climb out of the folder.
    if (id.size() < 16 || id.size() > 24)
        return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        char c = id[i];
        bool ok = (i < 8 || (i > 8 && i < 15)) ? std::isdigit(static_cast<unsigned char>(c))
                  : i == 8                      ? c == 'T'
                  : i == 15                     ? c == 'Z'
                  : i == 16                     ? c == '-'
                                                : std::isdigit(static_cast<unsigned char>(c));
        if (!ok)
            return false;
    }
    return id.size() != 17;
}

void write_description(const std::string& backup_dir, const BackupInfo& info)
{
    std::string text = to_json_text(info);
    std::string tmp = backup_dir + "/" + kDescriptionFile + ".tmp";
    std::string final_path = backup_dir + "/" + kDescriptionFile;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0)
        throw Error("58030", "could not create \"" + tmp + "\": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error("58030", "could not write \"" + tmp + "\": " + std::strerror(saved));
        }
        done += static_cast<std::size_t>(n);
    }
    // Both always run (no fd left open); the first failure is the one reported.
    int synced = ::fsync(fd) == 0 ? 0 : errno;
    int closed = ::close(fd) == 0 ? 0 : errno;
    if (synced != 0 || closed != 0) {
        ::unlink(tmp.c_str());
        throw Error("58030", "could not fsync \"" + tmp + "\": " + std::strerror(synced ? synced : closed));
    }
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        int saved = errno;
        ::unlink(tmp.c_str());
        throw Error("58030", "could not rename \"" + tmp + "\": " + std::strerror(saved));
    }
    fsync_path(backup_dir, true);
}

}  // namespace warden
