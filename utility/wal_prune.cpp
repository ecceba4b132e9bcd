#include "wal_prune.hpp"

#include "error.hpp"
#include "wal_archive.hpp"

namespace warden::walprune {

namespace fs = std::filesystem;

Result prune_wal(const fs::path& backup_dir, const std::vector<wal::KeptBackup>& kept, bool dry_run)
{
    Result result;
    fs::path dir = backup_dir / "wal";
    if (!fs::is_directory(dir)) {
        result.plan.keep_reason = "no WAL archive in this folder";
        return result;
    }
    walarchive::Archive archive(backup_dir);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
        names.push_back(e.path().filename().string());
    result.plan = wal::plan_wal_prune(names, kept, archive.segment_size());
    for (const auto& range : result.plan.ranges)
        for (const auto& f : range.files) {
            std::error_code ec;
            auto size = fs::file_size(dir / f, ec);
            result.bytes += ec ? 0 : size;
            ++result.files;
            if (!dry_run && !fs::remove(dir / f, ec) && ec)
                throw Error("58030", "could not remove \"" + (dir / f).string() + "\": " + ec.message());
        }
    if (!dry_run && result.files > 0)
        walarchive::fsync_path(dir, true);
    return result;
}

}  // namespace warden::walprune
