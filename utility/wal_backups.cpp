#include "wal_backups.hpp"

#include <fstream>
#include <optional>
#include <string>

namespace warden::walbackups {

namespace fs = std::filesystem;

namespace {
// "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)" from a backup history file.
std::optional<std::pair<wal::TimeLine, wal::Lsn>> read_backup_history(const fs::path& p)
{
    std::ifstream in(p);
    const std::string key = "START WAL LOCATION: ";
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) != 0)
            continue;
        std::string rest = line.substr(key.size());
        std::string lsn = rest.substr(0, rest.find(' '));
        auto file = rest.find("(file ");
        if (file == std::string::npos)
            return std::nullopt;
        auto id = wal::parse_segment_name(rest.substr(file + 6, 24), wal::kDefaultSegmentSize);
        if (!id)
            return std::nullopt;
        try {
            return std::make_pair(id->tli, wal::parse_lsn(lsn));
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    return std::nullopt;
}
}  // namespace

std::vector<std::pair<wal::TimeLine, wal::Lsn>> kept_backup_starts(const fs::path& backup_dir)
{
    std::vector<std::pair<wal::TimeLine, wal::Lsn>> out;
    fs::path wal_dir = backup_dir / "wal";
    if (!fs::is_directory(wal_dir))
        return out;
    for (const auto& e : fs::directory_iterator(wal_dir))
        if (wal::classify(e.path().filename().string()) == wal::FileKind::backup_label)
            if (auto start = read_backup_history(e.path()))
                out.push_back(*start);
    return out;
}

}  // namespace warden::walbackups
