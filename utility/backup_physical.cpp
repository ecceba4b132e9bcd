#include "backup_physical.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <thread>

#include "backup_check.hpp"
#include "backup_common.hpp"
#include "backup_key.hpp"
#include "backup_manifest.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "fs/safe_file.hpp"
#include "progress.hpp"
#include "tar_members.hpp"
#include "version.hpp"

namespace warden {

namespace {

struct ServerTablespace {
    std::string oid;  // empty for the main data directory
    std::string location;
};

std::string quote_literal(const std::string& s)
{
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += '\'';
        out += c;
    }
    return out + "'";
}

// One archive of the COPY stream: written (compressed) and hashed at the same time.
struct OpenArchive {
    std::string oid;
    std::string stored_name;
    std::unique_ptr<CompressedWriter> writer;
    std::unique_ptr<StreamingTarHasher> hasher;
    std::unique_ptr<IncrementalArchiveFilter> filter;  // incremental backups instead of both
    std::vector<TarMember> members;
    WrittenFile written;
};

std::uint64_t read_be64(const char* p)
{
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

ResultPtr next_result(PGconn* conn, const char* step)
{
    ResultPtr res(PQgetResult(conn));
    if (!res)
        throw Error("08P01", std::string("server ended the backup early (") + step + ")");
    auto st = PQresultStatus(res.get());
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE)
        throw_result_error(res.get(), conn);
    return res;
}

// Waits for the next CopyData message while watching for signals.
int get_copy_data(PGconn* conn, char** buf)
{
    for (;;) {
        int n = PQgetCopyData(conn, buf, 1);
        if (n != 0)
            return n;
        throw_if_interrupted();
        pollfd pfd{PQsocket(conn), POLLIN, 0};
        int rc = ::poll(&pfd, 1, 200);
        if (rc < 0 && errno != EINTR)
            throw Error("08006", std::string("poll failed: ") + std::strerror(errno));
        throw_if_interrupted();
        if (PQconsumeInput(conn) == 0)
            throw Error("08006", std::string("connection lost during the backup: ") + PQerrorMessage(conn));
    }
}

class PhysicalBackup {
public:
    PhysicalBackup(const PhysicalBackupOptions& opts) : opts_(opts) {}

    BackupInfo run()
    {
        install_interrupt_handlers();
        double t0 = monotonic_seconds();
        info_.kind = "physical";
        info_.label = opts_.label;
        info_.compression = compression_name(opts_.compression);
        info_.compression_level = opts_.compression == Compression::none ? 0 : opts_.level;
        info_.warden_version = kVersion;
        info_.started_at = now_iso8601();
        if (opts_.encrypt)
            start_encrypting(info_);

        Connection repl(opts_.conninfo, true, "warden backup");
        PGconn* conn = repl.get();
        info_.conninfo = describe_connection(conn);
        if (PQserverVersion(conn) < 150000)
            throw Error("0A000", "physical backups need PostgreSQL 15 or later (server is " +
                                     std::string(PQparameterStatus(conn, "server_version")) + ")");
        info_.server_version_num = PQserverVersion(conn);
        info_.server_version = PQparameterStatus(conn, "server_version");

        auto ident = repl.exec("IDENTIFY_SYSTEM");
        info_.system_identifier = PQgetvalue(ident.get(), 0, 0);
        if (opts_.incremental) {
            parent_ = std::make_unique<IncrementalParent>(
                load_incremental_parent(opts_.dir, *opts_.incremental, info_.system_identifier));
            info_.type = opts_.incremental->differential ? "differential" : "incremental";
            info_.parent = parent_->info.id;
        }
        // A temporary slot on the same connection keeps the WAL the backup needs from
        // being recycled, and disappears with the connection however the run ends.
        // Unique per run: two hosts backing up the same server may share a pid.
        std::string slot = "warden_backup_" + std::to_string(::getpid()) + "_" + std::to_string(std::time(nullptr));
        repl.exec("CREATE_REPLICATION_SLOT " + slot + " TEMPORARY PHYSICAL (RESERVE_WAL)");

        info_.ledger_version = read_ledger_version();

        folder_ = start_backup_folder(opts_.dir);
        info_.id = folder_.id;
        if (info_.label.empty())
            info_.label = "warden " + info_.id;
        try {
            if (parent_)
                blocks_ = std::make_unique<BlockStore>(
                    folder_.partial + "/" + kBlocksArchiveBase + compression_suffix(opts_.compression),
                    opts_.compression, opts_.level, compressor_threads());
            stream(conn);
            finish();
        } catch (...) {
            current_.reset();
            blocks_.reset();
            discard_backup_folder(folder_);
            throw;
        }
        info_.finished_at = now_iso8601();
        info_.backup_seconds = seconds_since(t0);
        publish_backup_folder(folder_, info_);
        return info_;
    }

private:
    std::optional<std::string> read_ledger_version()
    {
        try {
            Connection plain(opts_.conninfo, false, "warden backup");
            return ledger_version(plain);
        } catch (const Error&) {
            return std::nullopt;  // replication-only access: the ledger is optional
        }
    }

    void stream(PGconn* conn)
    {
        std::string cmd = "BASE_BACKUP (LABEL " + quote_literal(info_.label) +
                          ", PROGRESS, CHECKPOINT 'fast', WAL, WAIT false, MANIFEST 'yes', "
                          "MANIFEST_CHECKSUMS 'SHA256', TARGET 'client'" +
                          (opts_.max_rate_kb > 0 ? ", MAX_RATE " + std::to_string(opts_.max_rate_kb) : "") + ")";
        if (!PQsendQuery(conn, cmd.c_str()))
            throw Error("08006", std::string("could not start the backup: ") + PQerrorMessage(conn));

        auto start = next_result(conn, "start position");
        if (PQresultStatus(start.get()) != PGRES_TUPLES_OK || PQntuples(start.get()) != 1)
            throw Error("08P01", "unexpected reply to BASE_BACKUP (start position)");
        info_.start_lsn = PQgetvalue(start.get(), 0, 0);
        info_.timeline = static_cast<std::uint32_t>(std::stoul(PQgetvalue(start.get(), 0, 1)));
        // Page LSNs compare only along one history: after a promotion or a restore the
        // server may have reused LSNs the parent saw with other contents.
        if (parent_ && parent_->info.timeline != info_.timeline)
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        "the server is on timeline " + std::to_string(info_.timeline) + ", parent backup " +
                            parent_->info.id + " on " + std::to_string(parent_->info.timeline),
                        {}, "Take a full backup after a timeline change.");

        auto tbs = next_result(conn, "tablespace list");
        if (PQresultStatus(tbs.get()) != PGRES_TUPLES_OK || PQnfields(tbs.get()) < 3)
            throw Error("08P01", "unexpected reply to BASE_BACKUP (tablespace list)");
        for (int i = 0; i < PQntuples(tbs.get()); ++i) {
            ServerTablespace t;
            if (!PQgetisnull(tbs.get(), i, 0))
                t.oid = PQgetvalue(tbs.get(), i, 0);
            if (!PQgetisnull(tbs.get(), i, 1))
                t.location = PQgetvalue(tbs.get(), i, 1);
            if (!PQgetisnull(tbs.get(), i, 2))
                estimate_ += std::stoull(PQgetvalue(tbs.get(), i, 2)) * 1024;
            tablespaces_.push_back(t);
        }

        auto copy = next_result(conn, "copy start");
        if (PQresultStatus(copy.get()) != PGRES_COPY_OUT)
            throw Error("08P01", "unexpected reply to BASE_BACKUP (no COPY stream)");

        Progress progress("backup", opts_.quiet);
        bool in_manifest = false;
        for (;;) {
            char* raw = nullptr;
            int n = get_copy_data(conn, &raw);
            if (n == -1)
                break;
            if (n == -2)
                throw Error("08006", std::string("connection lost during the backup: ") + PQerrorMessage(conn));
            std::unique_ptr<char, decltype(&PQfreemem)> msg(raw, PQfreemem);
            if (n < 1)
                throw Error("08P01", "empty message in the backup stream");
            const char* body = raw + 1;
            std::size_t len = static_cast<std::size_t>(n - 1);
            switch (raw[0]) {
            case 'n':
                close_archive();
                if (in_manifest)
                    throw Error("08P01", "archive announced after the manifest");
                open_archive(body, len);
                break;
            case 'd':
                if (in_manifest)
                    manifest_text_.append(body, len);
                else if (current_) {
                    auto chunk = std::make_shared<const std::string>(body, len);
                    if (current_->filter) {
                        current_->filter->push(std::move(chunk));
                    } else {
                        current_->writer->write(body, len);
                        current_->hasher->push(std::move(chunk));
                    }
                    received_ += len;
                } else
                    throw Error("08P01", "archive data before any archive was announced");
                break;
            case 'p':
                if (len < 8)
                    throw Error("08P01", "short progress message");
                server_done_ = read_be64(body);
                break;
            case 'm':
                close_archive();
                in_manifest = true;
                break;
            default:
                throw Error("08P01", std::string("unknown message type '") + raw[0] + "' in the backup stream");
            }
            progress.update(std::max(received_, server_done_), estimate_);
        }
        progress.clear();
        close_archive();
        if (!in_manifest)
            throw Error("08P01", "the server sent no backup_manifest");

        // After the COPY: its completion, then the end position.
        for (;;) {
            ResultPtr res(PQgetResult(conn));
            if (!res)
                break;
            auto st = PQresultStatus(res.get());
            if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE)
                throw_result_error(res.get(), conn);
            if (st == PGRES_TUPLES_OK && PQntuples(res.get()) == 1 && PQnfields(res.get()) >= 1)
                info_.stop_lsn = PQgetvalue(res.get(), 0, 0);
        }
        if (info_.stop_lsn.empty())
            throw Error("08P01", "the server did not report the backup's end position");
    }

    void open_archive(const char* body, std::size_t len)
    {
        const char* end = body + len;
        const char* name_end = static_cast<const char*>(std::memchr(body, '\0', len));
        if (!name_end)
            throw Error("08P01", "malformed new-archive message");
        std::string name(body, name_end);
        const char* loc = name_end + 1;
        const char* loc_end = loc < end ? static_cast<const char*>(std::memchr(loc, '\0', end - loc)) : nullptr;
        std::string location = loc_end ? std::string(loc, loc_end) : "";

        // Only "base.tar" and "OID.tar" of a tablespace the server listed: a name is
        // used as a file name here, so nothing else may pass.
        std::string oid;
        if (name != "base.tar") {
            bool digits = name.size() > 4 && name.size() <= 14 &&
                          name.compare(name.size() - 4, 4, ".tar") == 0 &&
                          std::all_of(name.begin(), name.end() - 4, ::isdigit);
            if (!digits)
                throw Error("08P01", "the server sent an archive with an unexpected name \"" + name + "\"");
            oid = name.substr(0, name.size() - 4);
            auto it = std::find_if(tablespaces_.begin(), tablespaces_.end(),
                                   [&](const ServerTablespace& t) { return t.oid == oid; });
            if (it == tablespaces_.end() || it->location != location)
                throw Error("08P01", "archive \"" + name + "\" matches no tablespace the server listed");
        }
        for (const auto& a : done_)
            if (a.oid == oid)
                throw Error("08P01", "archive \"" + name + "\" sent twice");

        auto a = std::make_unique<OpenArchive>();
        a->oid = oid;
        a->stored_name = name + compression_suffix(opts_.compression);
        if (parent_) {
            if (!oid.empty() && std::none_of(parent_->info.tablespaces.begin(), parent_->info.tablespaces.end(),
                                             [&](const CatalogTablespace& t) { return t.oid == oid; }))
                throw Error(sqlstate::object_not_in_prerequisite_state,
                            "tablespace " + oid + " is newer than parent backup " + parent_->info.id, {},
                            "Take a full backup after creating a tablespace.");
            a->filter = std::make_unique<IncrementalArchiveFilter>(*parent_, oid, folder_.partial + "/" + a->stored_name,
                                                                   opts_.compression, opts_.level,
                                                                   compressor_threads(), *blocks_);
        } else {
            a->writer = std::make_unique<CompressedWriter>(folder_.partial + "/" + a->stored_name,
                                                           opts_.compression, opts_.level, compressor_threads());
            a->hasher = std::make_unique<StreamingTarHasher>();
        }
        if (!oid.empty())
            info_.tablespaces.push_back({oid, location, a->stored_name});
        current_ = std::move(a);
    }

    void close_archive()
    {
        if (!current_)
            return;
        if (current_->filter) {
            current_->members = current_->filter->finish(current_->written);
            current_->filter.reset();
        } else {
            current_->written = current_->writer->finish();
            current_->members = current_->hasher->finish();
            current_->writer.reset();
            current_->hasher.reset();
        }
        done_.push_back(std::move(*current_));
        current_.reset();
    }

    void finish()
    {
        if (std::none_of(done_.begin(), done_.end(), [](const OpenArchive& a) { return a.oid.empty(); }))
            throw Error("08P01", "the server sent no base archive");
        fs::write_file_atomically(fs::Dir::open(folder_.partial), "backup_manifest", manifest_text_);
        BackupManifest manifest = BackupManifest::parse(manifest_text_);

        BackupContentCheck check(manifest, nullptr);
        for (const auto& a : done_)
            for (const auto& m : a.members)
                check.check(a.oid, m);
        check.finish();
        info_.wal = check.wal_found();
        info_.wal_segment_size = check_wal_range(manifest, info_.wal);

        for (const auto& a : done_) {
            info_.files.push_back({a.stored_name, a.written.stored_bytes, a.written.sha256});
            info_.original_bytes += a.written.raw_bytes;
            info_.stored_bytes += a.written.stored_bytes;
        }
        info_.files.push_back({"backup_manifest", manifest_text_.size(), sha256_hex(manifest_text_)});
        info_.stored_bytes += manifest_text_.size();
        if (parent_)
            finish_incremental();
    }

    // blocks.tar and incremental.json; the parent's tablespaces must all still be there.
    void finish_incremental()
    {
        for (const auto& t : parent_->info.tablespaces)
            if (std::none_of(info_.tablespaces.begin(), info_.tablespaces.end(),
                             [&](const CatalogTablespace& mine) { return mine.oid == t.oid; }))
                throw Error(sqlstate::object_not_in_prerequisite_state,
                            "tablespace " + t.oid + " of parent backup " + parent_->info.id + " is gone", {},
                            "Take a full backup after dropping a tablespace.");
        std::string blocks_name = std::string(kBlocksArchiveBase) + compression_suffix(opts_.compression);
        WrittenFile w = blocks_->finish();
        info_.files.push_back({blocks_name, w.stored_bytes, w.sha256});
        info_.original_bytes += w.raw_bytes;
        info_.stored_bytes += w.stored_bytes;
        blocks_->map().parent = parent_->info.id;
        blocks_->map().parent_start_lsn = parent_->info.start_lsn;
        std::string map_text = block_map_to_json(blocks_->map());
        fs::write_file_atomically(fs::Dir::open(folder_.partial), kBlockMapFile, map_text);
        info_.files.push_back({kBlockMapFile, map_text.size(), sha256_hex(map_text)});
        info_.stored_bytes += map_text.size();
    }

    int compressor_threads() const
    {
        return opts_.threads > 0 ? opts_.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    }

    const PhysicalBackupOptions& opts_;
    BackupInfo info_;
    BackupFolder folder_;
    std::vector<ServerTablespace> tablespaces_;
    // Declared before current_: an archive's filter writes into blocks_.
    std::unique_ptr<IncrementalParent> parent_;
    std::unique_ptr<BlockStore> blocks_;
    std::unique_ptr<OpenArchive> current_;
    std::vector<OpenArchive> done_;
    std::string manifest_text_;
    std::uint64_t estimate_ = 0, received_ = 0, server_done_ = 0;
};

}  // namespace

BackupInfo create_physical_backup(const PhysicalBackupOptions& opts)
{
    return PhysicalBackup(opts).run();
}

}  // namespace warden
