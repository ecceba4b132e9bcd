#include "backup_catalog.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "error.hpp"
#include "json_text.hpp"

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
        {"type", b.type},
        {"parent", b.parent.empty() ? json(nullptr) : json(b.parent)},
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
        {"encryption", b.encryption_salt.empty()
                           ? json(nullptr)
                           : json{{"method", "aes-256-gcm"},
                                  {"salt", b.encryption_salt},
                                  {"key_check", b.encryption_key_check}}},
    };
    return json_text(doc) + "\n";
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
        b.type = doc.value("type", "full");
        if (b.type != "full" && b.type != "incremental" && b.type != "differential")
            throw Error(sqlstate::data_exception, "unknown backup type \"" + b.type + "\"");
        if (doc.contains("parent") && !doc.at("parent").is_null())
            b.parent = doc.at("parent").get<std::string>();
        if ((b.type == "full") != b.parent.empty())
            throw Error(sqlstate::data_exception, "a " + b.type + " backup " +
                                                      (b.parent.empty() ? "without a parent" : "with a parent"));
        if (!b.parent.empty() && !valid_backup_id(b.parent))
            throw Error(sqlstate::data_exception, "parent \"" + b.parent + "\" is not a backup ID");
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
        if (doc.contains("encryption") && !doc.at("encryption").is_null()) {
            const json& e = doc.at("encryption");
            if (e.at("method").get<std::string>() != "aes-256-gcm")
                throw Error(sqlstate::data_exception, "unknown encryption method");
            b.encryption_salt = e.at("salt").get<std::string>();
            b.encryption_key_check = e.at("key_check").get<std::string>();
            auto is_hex = [](const std::string& h) {
                return !h.empty() && h.size() % 2 == 0 && h.find_first_not_of("0123456789abcdef") == std::string::npos;
            };
            if (!is_hex(b.encryption_salt) || !is_hex(b.encryption_key_check))
                throw Error(sqlstate::data_exception, "unreadable encryption salt or key check");
        }
        if (doc.contains("row_counts"))
            b.row_counts = doc.at("row_counts").get<std::map<std::string, std::int64_t>>();
    } catch (const json::exception& e) {
        throw Error(sqlstate::data_exception, std::string("unreadable backup.json: ") + e.what());
    }
    return b;
}

BackupInfo description_for_folder(const std::string& folder_name, const std::string& text)
{
    BackupInfo b = backup_info_from_json(text);
    if (b.id != folder_name)
        throw Error(sqlstate::data_exception,
                    "backup.json names backup " + b.id + ", not its folder");
    return b;
}

void sort_listing(CatalogListing& listing)
{
    std::sort(listing.backups.begin(), listing.backups.end(),
              [](const BackupInfo& a, const BackupInfo& b) {
                  return std::tie(a.finished_at, a.id) < std::tie(b.finished_at, b.id);
              });
    std::sort(listing.unusable.begin(), listing.unusable.end());
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

}  // namespace warden
