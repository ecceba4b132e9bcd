// `warden wal push|fetch|receive|verify|recovery-settings`: continuous WAL archiving into
// BACKUPS/wal and the way back out for recovery. See docs/wal.md.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <new>

#include "backup_key.hpp"
#include "checksum.hpp"
#include "commands.hpp"
#include "error.hpp"
#include "recovery_settings.hpp"
#include "repo/remote_wal.hpp"
#include "wal_archive.hpp"
#include "wal_backups.hpp"
#include "wal_receiver.hpp"

namespace warden::cli {

namespace {
namespace fs = std::filesystem;
using walarchive::Archive;

struct WalOptions {
    std::string dir;
    std::string key_file;
    bool encrypt = false;
    bool json = false;
};

// The key of an encrypted archive comes from a file or the environment, never argv.
void add_key_option(CLI::App* cmd, WalOptions& o)
{
    cmd->add_option("--key-file", o.key_file,
                    "key of an encrypted WAL archive (else $WARDEN_BACKUP_PASSPHRASE)");
}

void add_encrypt_options(CLI::App* cmd, WalOptions& o)
{
    cmd->add_flag("--encrypt", o.encrypt,
                  "AES-256-GCM encrypt the archive (its first file creates wal/encryption.json; key from "
                  "--key-file or $WARDEN_BACKUP_PASSPHRASE)");
    add_key_option(cmd, o);
}

void load_wal_key(const WalOptions& o)
{
    if (o.encrypt)
        load_backup_secret(o.key_file);
    else
        load_backup_secret_if_any(o.key_file);
    walarchive::request_encryption(o.encrypt, !o.key_file.empty());
}

void add_dir_option(CLI::App* cmd, WalOptions& o)
{
    cmd->add_option("--dir", o.dir,
                    "backup folder or s3://BUCKET/PREFIX (WAL goes to its wal/ subfolder; default: "
                    "$WARDEN_BACKUP_DIR)");
    cmd->add_flag("--json", o.json, "print the result as JSON");
}

fs::path require_dir(const WalOptions& o)
{
    if (o.dir.empty() && !std::getenv("WARDEN_BACKUP_DIR"))
        throw CLI::ValidationError("--dir", "give --dir BACKUPS or set WARDEN_BACKUP_DIR");
    return walarchive::backup_dir_from(o.dir);
}

void add_push(CLI::App& wal)
{
    auto o = std::make_shared<WalOptions>();
    auto source = std::make_shared<std::string>();
    auto* cmd = wal.add_subcommand(
        "push", "archive one file from pg_wal (archive_command = 'warden wal push --dir BACKUPS %p')");
    add_dir_option(cmd, *o);
    add_encrypt_options(cmd, *o);
    cmd->add_option("file", *source, "path of the WAL file (%p)")->required();
    on_run(cmd, [o, source] {
        fs::path dir = require_dir(*o);
        load_wal_key(*o);
        auto outcome = repo::is_remote(dir.string())
                           ? repo::wal_push(*repo::open_repository(dir.string()), *source)
                           : Archive(dir).push(*source);
        std::string name = fs::path(*source).filename().string();
        if (o->json)
            std::cout << nlohmann::json{{"file", name},
                                        {"outcome", outcome == walarchive::PushOutcome::stored
                                                        ? "stored" : "already_present"}}.dump()
                      << "\n";
        else if (outcome == walarchive::PushOutcome::already_present)
            std::fprintf(stderr, "warden: %s is already archived with the same content\n", name.c_str());
        return 0;
    });
}

// Exit status above 125 makes the server abort recovery (FATAL) instead of taking the
// failure for "no such file" and ending recovery early, which with --latest would promote
// a cluster that misses the rest of the WAL. So exit 1 means exactly "no form of this
// file exists in the archive"; everything else (denied, damaged, too large, a bad
// archive.json, a wrong --dir, a destination that cannot be written, out of memory)
// exits 126.
constexpr int kAbortRecovery = 126;

int fetch_abort(const std::string& why)
{
    std::fprintf(stderr, "warden: %s\n", why.c_str());
    return kAbortRecovery;
}

void add_fetch(CLI::App& wal)
{
    auto o = std::make_shared<WalOptions>();
    auto name = std::make_shared<std::string>();
    auto dest = std::make_shared<std::string>();
    auto* cmd = wal.add_subcommand(
        "fetch", "restore one WAL file (restore_command = 'warden wal fetch --dir BACKUPS %f %p')");
    add_dir_option(cmd, *o);
    add_key_option(cmd, *o);
    cmd->add_option("name", *name, "name of the WAL file (%f)")->required();
    cmd->add_option("dest", *dest, "where to write it (%p)")->required();
    on_run(cmd, [o, name, dest] {
        try {
            fs::path dir = require_dir(*o);
            load_wal_key(*o);
            if (repo::is_remote(dir.string()))
                repo::wal_fetch(*repo::open_repository(dir.string()), *name, *dest);
            else
                Archive(dir, false).fetch(*name, *dest);
        } catch (const walarchive::NotFound& e) {
            // Expected at the end of every archive recovery: recovery asks for the next
            // file until one is missing. Exit 1 (not above 125) so it ends normally.
            if (o->json)
                std::cout << nlohmann::json{{"file", *name}, {"found", false}}.dump() << "\n";
            std::fprintf(stderr, "warden: %s\n", e.what());
            return 1;
        } catch (const std::bad_alloc&) {
            return fetch_abort("out of memory while fetching " + *name);
        } catch (const std::exception& e) {
            return fetch_abort(e.what());
        }
        if (o->json)
            std::cout << nlohmann::json{{"file", *name}, {"found", true}}.dump() << "\n";
        return 0;
    });
}

// The receiver's local folder for a remote repository: it must outlive the process,
// since the server's slot moves on once a segment is durable here (not yet pushed).
fs::path receive_staging(const std::string& url, const std::string& given, bool create)
{
    if (!given.empty()) {
        if (repo::is_remote(given))
            throw Error(sqlstate::invalid_parameter_value, "--staging must be a local folder");
        return given;
    }
    const char* home = std::getenv("HOME");
    if (!home || !*home)
        throw Error(sqlstate::invalid_parameter_value, "HOME is not set: give --staging DIR");
    fs::path p = fs::path(home) / ".local/state/warden/wal-receive" / sha256_hex(url).substr(0, 16);
    if (create) {
        fs::create_directories(p);
        fs::permissions(p, fs::perms::owner_all, fs::perm_options::replace);
    }
    return p;
}

void add_receive(CLI::App& wal, ConnectionOptions& conn)
{
    auto o = std::make_shared<WalOptions>();
    auto r = std::make_shared<walreceiver::Options>();
    auto status_s = std::make_shared<double>(10.0);
    auto* cmd = wal.add_subcommand(
        "receive", "stream WAL continuously from a physical replication slot into BACKUPS/wal");
    add_dir_option(cmd, *o);
    add_encrypt_options(cmd, *o);
    add_connection_option(cmd, conn);
    cmd->add_option("--slot", r->slot,
                    fmt::format("permanent physical slot, created if absent (default {})",
                                walreceiver::kDefaultSlot));
    cmd->add_option("--application-name", r->application_name,
                    "application_name for synchronous_standby_names (default: the slot name)");
    cmd->add_flag("--synchronous", r->synchronous,
                  "fsync and report the flush position after every write (RPO zero with "
                  "synchronous_standby_names)");
    cmd->add_option("--status-interval", *status_s, "seconds between status updates (default 10)")
        ->check(CLI::Range(0.1, 3600.0));
    cmd->add_option("--fsync-interval", r->fsync_interval_ms,
                    "without --synchronous, milliseconds between fsyncs (default 1000)")
        ->check(CLI::Range(1, 60000));
    cmd->add_flag("--no-loop", r->no_loop, "exit on a connection failure instead of retrying");
    cmd->add_flag("-v,--verbose", r->verbose, "log every archived segment");
    auto staging = std::make_shared<std::string>();
    cmd->add_option("--staging", *staging,
                    "with --dir s3://: local folder for the live segment and segments not yet "
                    "pushed (default: ~/.local/state/warden/wal-receive/<hash of the URL>)");
    on_run(cmd, [o, r, status_s, staging, &conn] {
        fs::path dir = require_dir(*o);
        std::shared_ptr<repo::Repository> remote;
        if (repo::is_remote(dir.string())) {
            remote = repo::open_repository(dir.string());
            remote->list("wal/archive.json");  // wrong credentials or bucket: say so now
            r->backup_dir = receive_staging(dir.string(), *staging, true);
            r->ship_target = remote->describe();
            r->ship = [remote](const std::string& name, const std::string& bytes) {
                repo::wal_push_bytes(*remote, name, bytes);
            };
        } else {
            if (!staging->empty())
                throw Error(sqlstate::invalid_parameter_value, "--staging applies to --dir s3://... only");
            r->backup_dir = dir;
        }
        // Finished segments are stored through the archive's own encryption; a wrong or
        // missing key is refused now, not at the first finished segment.
        load_wal_key(*o);
        if (!remote)
            Archive(r->backup_dir).unlock();
        r->conninfo = conn.conninfo;
        r->status_interval_ms = static_cast<int>(*status_s * 1000);
        return walreceiver::run(*r);
    });
}

void add_verify(CLI::App& wal)
{
    auto o = std::make_shared<WalOptions>();
    auto* cmd = wal.add_subcommand(
        "verify", "check every archived file's checksum and that no segment is missing");
    add_dir_option(cmd, *o);
    add_key_option(cmd, *o);
    on_run(cmd, [o] {
        fs::path dir = require_dir(*o);
        load_wal_key(*o);
        walarchive::VerifyReport report;
        std::size_t backups_checked = 0;
        if (repo::is_remote(dir.string())) {
            auto remote = repo::wal_verify(*repo::open_repository(dir.string()));
            report = remote.report;
            backups_checked = remote.backups_checked;
        } else {
            auto starts = walbackups::kept_backup_starts(dir);
            report = Archive(dir, false).verify(starts);
            backups_checked = starts.size();
        }
        if (o->json) {
            nlohmann::json problems = nlohmann::json::array();
            for (const auto& p : report.problems)
                problems.push_back({{"file", p.file}, {"reason", p.reason}});
            std::cout << nlohmann::json{{"ok", report.problems.empty()},
                                        {"segments_checked", report.segments_checked},
                                        {"other_files_checked", report.other_files_checked},
                                        {"newest_timeline", report.newest_timeline},
                                        {"oldest_segment", report.oldest_segment},
                                        {"newest_segment", report.newest_segment},
                                        {"backups_checked", backups_checked},
                                        {"problems", problems}}
                             .dump(2)
                      << "\n";
        } else {
            std::cout << fmt::format("{} segments and {} other files checked; timeline {}; {} .. {}\n",
                                     report.segments_checked, report.other_files_checked,
                                     report.newest_timeline,
                                     report.oldest_segment.empty() ? "-" : report.oldest_segment,
                                     report.newest_segment.empty() ? "-" : report.newest_segment);
            for (const auto& p : report.problems)
                std::cout << fmt::format("problem: {}: {}\n", p.file, p.reason);
        }
        if (!report.problems.empty()) {
            const auto& first = report.problems.front();
            std::fprintf(stderr, "warden: WAL archive check failed at %s: %s\n", first.file.c_str(),
                         first.reason.c_str());
            return 1;
        }
        return 0;
    });
}

void add_status(CLI::App& wal)
{
    auto o = std::make_shared<WalOptions>();
    auto* cmd = wal.add_subcommand(
        "status", "newest archived segment and its age, the receiver's live segment, receiver running");
    add_dir_option(cmd, *o);
    auto staging = std::make_shared<std::string>();
    cmd->add_option("--staging", *staging,
                    "with --dir s3://: the receiver's local folder (default as for wal receive)");
    on_run(cmd, [o, staging] {
        fs::path dir = require_dir(*o);
        walarchive::ArchiveStatus st;
        if (repo::is_remote(dir.string())) {
            st = repo::wal_status(*repo::open_repository(dir.string()));
            // The live segment and the receiver are on this machine, if anywhere.
            fs::path local = receive_staging(dir.string(), *staging, false);
            if (fs::exists(local / "wal")) {
                auto live = Archive(local, false).status();
                st.live_partial = live.live_partial;
                st.live_partial_age_seconds = live.live_partial_age_seconds;
                st.receiver_running = live.receiver_running;
                st.receiver_pid = live.receiver_pid;
            }
        } else {
            if (!staging->empty())
                throw Error(sqlstate::invalid_parameter_value, "--staging applies to --dir s3://... only");
            st = Archive(dir, false).status();
        }
        if (o->json) {
            std::cout << nlohmann::json{{"newest_segment", st.newest_segment},
                                        {"newest_age_seconds", st.newest_age_seconds},
                                        {"live_partial", st.live_partial},
                                        {"live_partial_age_seconds", st.live_partial_age_seconds},
                                        {"receiver_running", st.receiver_running},
                                        {"receiver_pid", st.receiver_pid},
                                        {"segments", st.segments},
                                        {"stored_bytes", st.stored_bytes},
                                        {"conflicts", st.conflicts}}
                             .dump(2)
                      << "\n";
            return 0;
        }
        std::cout << fmt::format("segments:        {} ({:.1f} MB stored)\n", st.segments,
                                 st.stored_bytes / 1048576.0);
        std::cout << fmt::format("newest segment:  {}\n",
                                 st.newest_segment.empty() ? "-"
                                     : fmt::format("{} ({} s ago)", st.newest_segment, st.newest_age_seconds));
        std::cout << fmt::format("live segment:    {}\n",
                                 st.live_partial.empty() ? "-"
                                     : fmt::format("{}.partial, written {} s ago", st.live_partial,
                                                   st.live_partial_age_seconds));
        std::cout << fmt::format("receiver:        {}\n",
                                 st.receiver_running ? "running (pid " + st.receiver_pid + ")" : "not running");
        if (st.conflicts)
            std::cout << fmt::format("conflicts:       {} copies set aside by conflicting pushes\n", st.conflicts);
        return 0;
    });
}

void add_recovery_settings(CLI::App& wal)
{
    auto o = std::make_shared<WalOptions>();
    auto t = std::make_shared<recovery::Target>();
    auto datadir = std::make_shared<std::string>();
    auto* cmd = wal.add_subcommand(
        "recovery-settings",
        "write restore_command, the recovery target and recovery.signal into a restored data "
        "directory");
    add_dir_option(cmd, *o);
    cmd->add_option("--key-file", o->key_file,
                    "key file of an encrypted WAL archive: restore_command passes its path to wal fetch");
    cmd->add_option("-D,--pgdata", *datadir, "data directory of the restored cluster")->required();
    add_target_options(cmd, *t);
    on_run(cmd, [o, t, datadir] {
        fs::path dir = require_dir(*o);
        std::string key = walbackups::wal_restore_key(dir.string(), o->key_file, true);
        recovery::write_recovery_settings(*datadir, dir, *t, recovery::self_executable(), key);
        if (o->json)
            std::cout << nlohmann::json{{"pgdata", *datadir}, {"target", recovery::describe(*t)}}.dump()
                      << "\n";
        return 0;
    });
}

void add_wal_commands(CLI::App& app)
{
    static ConnectionOptions conn;
    auto* wal = app.add_subcommand("wal", "continuous WAL archiving and point-in-time recovery");
    wal->require_subcommand(1);
    add_push(*wal);
    add_fetch(*wal);
    add_receive(*wal, conn);
    add_verify(*wal);
    add_status(*wal);
    add_recovery_settings(*wal);
}

const bool registered = add_command_group(45, add_wal_commands);
}  // namespace

}  // namespace warden::cli
