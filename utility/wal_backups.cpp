#include "wal_backups.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <optional>
#include <string>

#include "backup_key.hpp"
#include "catalog_files.hpp"
#include "repo/repository.hpp"
#include "error.hpp"
#include "wal_archive.hpp"
#include "wal_prune.hpp"

namespace warden::walbackups {

namespace fs = std::filesystem;

namespace {
// Physical backups whose WAL this archive holds: same system (when the archive knows it).
bool serves(const BackupInfo& b, const std::optional<std::string>& archive_system)
{
    return b.kind == "physical" && !b.start_lsn.empty() && b.timeline > 0 &&
           (!archive_system || b.system_identifier.empty() || b.system_identifier == *archive_system);
}

std::optional<std::string> archive_system(const std::string& backup_dir)
{
    if (!fs::is_directory(fs::path(backup_dir) / "wal"))
        return std::nullopt;
    return walarchive::Archive(backup_dir).system_identifier();
}
}  // namespace

std::vector<std::pair<wal::TimeLine, wal::Lsn>> kept_backup_starts(const fs::path& backup_dir)
{
    std::vector<std::pair<wal::TimeLine, wal::Lsn>> out;
    fs::path wal_dir = backup_dir / "wal";
    if (!fs::is_directory(wal_dir))
        return out;
    // Backup history files name their start: nothing is read, no key is needed.
    std::uint64_t seg = walarchive::Archive(backup_dir).segment_size();
    for (const auto& e : fs::directory_iterator(wal_dir))
        if (auto start = wal::backup_history_start(e.path().filename().string(), seg))
            out.push_back(*start);
    auto system = archive_system(backup_dir.string());
    for (const auto& b : load_catalog(backup_dir.string()).backups)
        if (serves(b, system))
            out.emplace_back(b.timeline, wal::parse_lsn(b.start_lsn));
    return out;
}

bool has_target(const recovery::Target& t)
{
    return t.latest || !t.time.empty() || !t.lsn.empty() || !t.xid.empty();
}

void check_restore_target(const recovery::Target& t, const BackupInfo& b, bool standby)
{
    recovery::validate(t);
    if (b.kind != "physical")
        throw Error(sqlstate::invalid_parameter_value,
                    "backup " + b.id + " is logical: a recovery target needs a physical backup");
    if (standby)
        throw Error(sqlstate::invalid_parameter_value,
                    "--standby and a recovery target exclude each other");
}

std::string wal_restore_key(const std::string& backup_dir, const std::string& key_file, bool for_wal_only)
{
    std::optional<repo::Scratch> scratch;
    fs::path dir = backup_dir;
    if (repo::is_remote(backup_dir)) {
        scratch.emplace();
        fs::create_directory(scratch->path() / "wal");
        repo::open_repository(backup_dir)->download(std::string("wal/") + walarchive::kEncryptionFile,
                                                    scratch->path() / "wal" / walarchive::kEncryptionFile);
        dir = scratch->path();
    } else if (!fs::is_directory(dir / "wal")) {
        return for_wal_only && !key_file.empty() ? fs::absolute(key_file).string() : "";
    }
    walarchive::Archive archive(dir);
    if (!archive.encrypted()) {
        if (for_wal_only && !key_file.empty())
            throw Error(sqlstate::invalid_parameter_value,
                        "the WAL archive of " + backup_dir + " is not encrypted: --key-file applies to encrypted archives");
        return "";
    }
    if (key_file.empty())
        throw Error(sqlstate::invalid_parameter_value,
                    "the WAL archive of " + backup_dir +
                        " is encrypted: give --key-file FILE for restore_command (a passphrase in the "
                        "environment does not reach the server)");
    load_backup_secret(key_file);
    walarchive::request_encryption(false, true);
    archive.unlock();
    return fs::absolute(key_file).string();
}

std::string apply_restore_target(const std::string& datadir, const std::string& backup_dir,
                                 const recovery::Target& t, const std::string& wal_key_file)
{
    recovery::write_recovery_settings(datadir, backup_dir, t, recovery::self_executable(), wal_key_file);
    return recovery::describe(t);
}

nlohmann::json prune_wal(const std::string& backup_dir, const CatalogListing& listing,
                         const std::vector<RetentionDecision>& decisions, bool dry_run, bool json)
{
    if (!fs::is_directory(fs::path(backup_dir) / "wal"))
        return nullptr;
    auto system = archive_system(backup_dir);
    std::vector<wal::KeptBackup> kept;
    for (const auto& d : decisions) {
        if (!d.keep)
            continue;
        for (const auto& b : listing.backups)
            if (b.id == d.id && serves(b, system))
                kept.push_back({b.id, b.timeline, wal::parse_lsn(b.start_lsn)});
    }
    auto result = walprune::prune_wal(backup_dir, kept, dry_run);
    nlohmann::json ranges = nlohmann::json::array();
    for (const auto& r : result.plan.ranges) {
        if (json) {
            ranges.push_back({{"first", r.first}, {"last", r.last}, {"files", r.files.size()},
                              {"reason", r.reason}});
            continue;
        }
        std::printf("%-20s %-12s %zu files, %s .. %s: %s\n", "wal", dry_run ? "would delete" : "deleted",
                    r.files.size(), r.first.c_str(), r.last.c_str(), r.reason.c_str());
    }
    if (!json)
        std::printf("%-20s %-12s %s\n", "wal", "keep", result.plan.keep_reason.c_str());
    return {{"ranges", ranges}, {"files", result.files}, {"bytes", result.bytes},
            {"keep_reason", result.plan.keep_reason}};
}

}  // namespace warden::walbackups
