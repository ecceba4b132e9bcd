#include "recovery_settings.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <sstream>
#include <vector>

#include "error.hpp"
#include "fs/safe_file.hpp"
#include "s3_location.hpp"
#include "wal_names.hpp"

namespace warden::recovery {

namespace fs = std::filesystem;

namespace {
// Single-quoted for the shell that runs restore_command, unless plainly safe.
std::string shell_quote(const std::string& s)
{
    bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("/._-+:=,@", c);
    });
    if (safe)
        return s;
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Far above any real postgresql.auto.conf; a bigger one is refused, not read.
constexpr std::size_t kMaxAutoConfBytes = 16 << 20;

bool is_recovery_line(const std::string& line)
{
    std::string t = line.substr(std::min(line.find_first_not_of(" \t"), line.size()));
    return t.rfind("restore_command", 0) == 0 || t.rfind("recovery_target", 0) == 0;
}
}  // namespace

std::string conf_quote(const std::string& s)
{
    // Quotes double; backslashes too, since the configuration parser reads escapes
    // (a shell-quoted restore_command holds both).
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\')
            out += c;
        out += c;
    }
    return out + "'";
}

void add_target_options(CLI::App* cmd, Target& t)
{
    cmd->add_option("--target-time", t.time,
                    "replay up to this time (a timestamp with time zone, e.g. '2026-11-23 03:00:00+00')");
    cmd->add_option("--target-lsn", t.lsn, "replay up to this WAL position (e.g. 0/3000158)");
    cmd->add_option("--target-xid", t.xid, "replay up to and including this transaction ID");
    cmd->add_flag("--latest", t.latest, "replay every WAL record the archive holds");
    cmd->add_option("--target-action", t.action,
                    "at the target: promote (default), pause or shutdown")
        ->check(CLI::IsMember({"promote", "pause", "shutdown"}));
}

std::string describe(const Target& t)
{
    if (t.latest)
        return "latest";
    std::string what = !t.time.empty() ? "time " + t.time
                       : !t.lsn.empty() ? "lsn " + t.lsn
                                        : "xid " + t.xid;
    return what + " then " + t.action;
}

void validate(const Target& t)
{
    int n = !t.time.empty() + !t.lsn.empty() + !t.xid.empty() + (t.latest ? 1 : 0);
    if (n != 1)
        throw Error(sqlstate::invalid_parameter_value,
                    "give exactly one of --target-time, --target-lsn, --target-xid, --latest");
    if (t.action != "promote" && t.action != "pause" && t.action != "shutdown")
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid --target-action \"" + t.action + "\": use promote, pause or shutdown");
    if (!t.lsn.empty())
        wal::parse_lsn(t.lsn);
    if (!t.xid.empty() && (t.xid.find_first_not_of("0123456789") != std::string::npos))
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid --target-xid \"" + t.xid + "\": a transaction ID is a number");
}

void write_recovery_settings(const fs::path& datadir, const fs::path& backup_dir, const Target& t,
                             const fs::path& warden_bin, const std::string& key_file)
{
    validate(t);
    // Run as root on a cluster the server account owns, every file in the data directory
    // is that account's to plant: nothing is followed, and what we write is given to it.
    warden::fs::Dir data = warden::fs::Dir::open(datadir.string());
    struct stat dst = data.status();
    auto pg_version = warden::fs::stat_at(data, "PG_VERSION");
    if (!pg_version || !S_ISREG(pg_version->st_mode) || pg_version->st_uid != dst.st_uid)
        throw Error(sqlstate::invalid_parameter_value,
                    "\"" + datadir.string() + "\" is not a PostgreSQL data directory");

    std::vector<std::string> kept;
    if (auto old = warden::fs::read_small_file(data, "postgresql.auto.conf", kMaxAutoConfBytes,
                                               dst.st_uid)) {
        std::istringstream in(*old);
        for (std::string line; std::getline(in, line);)
            if (!is_recovery_line(line))
                kept.push_back(line);
    }
    // A key file's path only: the key itself never enters the configuration or argv.
    std::string command = fmt::format("{} wal fetch --dir {}{} %f %p",
                                      shell_quote(fs::absolute(warden_bin).string()),
                                      shell_quote(s3::is_s3_url(backup_dir.string())
                                                      ? backup_dir.string()
                                                      : fs::absolute(backup_dir).string()),
                                      key_file.empty() ? "" : " --key-file " + shell_quote(key_file));
    kept.push_back("# recovery settings written by warden");
    kept.push_back("restore_command = " + conf_quote(command));
    kept.push_back("recovery_target_timeline = 'latest'");
    if (!t.time.empty())
        kept.push_back("recovery_target_time = " + conf_quote(t.time));
    if (!t.lsn.empty())
        kept.push_back("recovery_target_lsn = " + conf_quote(t.lsn));
    if (!t.xid.empty())
        kept.push_back("recovery_target_xid = " + conf_quote(t.xid));
    if (!t.latest)
        kept.push_back("recovery_target_action = " + conf_quote(t.action));

    std::string text;
    for (const auto& l : kept)
        text += l + "\n";
    // The server's own rule: group-readable files only in a group-readable data directory.
    mode_t mode = (dst.st_mode & S_IRGRP) ? 0640 : warden::fs::kPrivateFileMode;
    std::optional<warden::fs::Owner> owner;
    if (::geteuid() != dst.st_uid)
        owner = warden::fs::Owner{dst.st_uid, dst.st_gid};
    warden::fs::write_file_atomically(data, "postgresql.auto.conf", text, mode, owner);
    warden::fs::write_file_atomically(data, "recovery.signal", "", mode, owner);
}

fs::path self_executable() { return fs::read_symlink("/proc/self/exe"); }

}  // namespace warden::recovery
