// warden backup create|list|verify|drill|prune and warden restore.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

#include "backup_catalog.hpp"
#include "catalog_files.hpp"
#include "backup_common.hpp"
#include "backup_create.hpp"
#include "backup_drill.hpp"
#include "backup_key.hpp"
#include "backup_logical.hpp"
#include "backup_restore.hpp"
#include "backup_chain.hpp"
#include "incremental_restore.hpp"
#include "restore_object.hpp"
#include "commands.hpp"
#include "compressed_writer.hpp"
#include "error.hpp"
#include "json_text.hpp"
#include "progress.hpp"
#include "repo/remote_backup.hpp"
#include "retention.hpp"
#include "wal_backups.hpp"

using nlohmann::json;

namespace warden::cli {

namespace {

struct CreateArgs {
    ConnectionOptions conn;
    std::string dir, label, compress = "gzip", database, from, key_file;
    int level = -1, jobs = 0, max_rate = 0;
    bool logical = false, json = false, quiet = false, incremental = false, differential = false, encrypt = false;
};

struct IdArgs {
    ConnectionOptions conn;
    std::string dir, id, scratch, os_user, key_file;
    bool json = false, quiet = false;
};

struct PruneArgs {
    std::string dir, system_identifier;
    int keep_last = 0;
    int keep_days = -1;
    bool dry_run = false, json = false;
};

struct RestoreArgs {
    ConnectionOptions conn;
    std::string dir, id, target, database, primary_conninfo, table, into, scratch, os_user, key_file;
    std::vector<std::string> tablespace_mapping;
    bool standby = false, clean = false, json = false, quiet = false;
    int jobs = 0;
    recovery::Target recovery;  // point-in-time recovery from BACKUPS/wal (docs/wal.md)
};

void note(const std::optional<std::string>& msg, bool quiet)
{
    if (msg && !quiet)
        std::fprintf(stderr, "warden: note: %s\n", msg->c_str());
}

std::string fmt_seconds(double s) { return fmt::format("{:.1f} s", s); }

json summary_json(const BackupInfo& b)
{
    return {{"id", b.id},
            {"kind", b.kind},
            {"type", b.kind == "physical" ? json(b.type) : json(nullptr)},
            {"parent", b.parent.empty() ? json(nullptr) : json(b.parent)},
            {"encrypted", !b.encryption_salt.empty()},
            {"label", b.label},
            {"database", b.database},
            {"finished_at", b.finished_at},
            {"start_lsn", b.start_lsn},
            {"stop_lsn", b.stop_lsn},
            {"timeline", b.timeline},
            {"system_identifier", b.system_identifier},
            {"server_version", b.server_version},
            {"compression", b.compression},
            {"compression_level", b.compression_level},
            {"original_bytes", b.original_bytes},
            {"stored_bytes", b.stored_bytes},
            {"backup_seconds", b.backup_seconds},
            {"verified_at", b.verified_at ? json(*b.verified_at) : json(nullptr)},
            {"verify_ok", b.verify_ok ? json(*b.verify_ok) : json(nullptr)},
            {"restore_seconds", b.restore_seconds ? json(*b.restore_seconds) : json(nullptr)},
            {"ledger_version", b.ledger_version ? json(*b.ledger_version) : json(nullptr)}};
}

int run_create(const CreateArgs& a)
{
    repo::Staging staging(a.dir);  // s3://: made in a scratch folder, then uploaded
    BackupRequest req;
    req.dir = staging.local();
    req.conninfo = a.conn.conninfo;
    req.label = a.label;
    req.logical = a.logical;
    req.database = a.database;
    req.compression = parse_compression(a.compress);
    req.level = a.level >= 0 ? a.level : default_level(req.compression);
    req.jobs = a.jobs;
    req.max_rate_kb = a.max_rate;
    req.quiet = a.quiet || a.json;
    if (a.logical && a.database.empty())
        throw Error(sqlstate::invalid_parameter_value, "--logical needs --database NAME");
    if (!a.logical && !a.database.empty())
        throw Error(sqlstate::invalid_parameter_value, "--database applies to --logical backups only");
    if (a.incremental && a.differential)
        throw Error(sqlstate::invalid_parameter_value, "--incremental and --differential exclude each other");
    if (!a.from.empty() && !a.incremental && !a.differential)
        throw Error(sqlstate::invalid_parameter_value, "--from needs --incremental or --differential");
    if (a.logical && (a.incremental || a.differential))
        throw Error(sqlstate::invalid_parameter_value, "incremental and differential backups are physical only");
    if (a.incremental || a.differential) {
        req.incremental = IncrementalRequest{};
        req.incremental->differential = a.differential;
        req.incremental->from_id = a.from;
        if (staging.remote()) {
            // The parent is chosen from the bucket's catalog; of the parent only its
            // backup_manifest is needed (the sizes of its files), not its archives.
            req.incremental->catalog_name = a.dir;
            req.incremental->fetch_parent_manifest = [&staging](const std::string& id) {
                staging.fetch_file(id, "backup_manifest");
            };
        }
    }
    if (!a.key_file.empty() && !a.encrypt)
        throw Error(sqlstate::invalid_parameter_value, "--key-file applies to --encrypt");
    if (a.encrypt) {
        load_backup_secret(a.key_file);
        req.encrypt = true;
    }
    if (req.compression == Compression::gzip && (req.level < 1 || req.level > 9))
        throw Error(sqlstate::invalid_parameter_value, "gzip --level must be between 1 and 9");
    if (req.compression == Compression::zstd && (req.level < 1 || req.level > 19))
        throw Error(sqlstate::invalid_parameter_value, "zstd --level must be between 1 and 19");

    staging.check_access();
    if (req.incremental)
        staging.fetch_catalog();
    BackupInfo b = create_backup(req);
    staging.publish(b.id);
    note(record_backup_in_database(a.conn.conninfo, b), a.quiet);
    if (a.json) {
        std::printf("%s\n", json_text(summary_json(b)).c_str());
    } else {
        if (!a.quiet)
            std::fprintf(stderr, "%s backup %s: %s in %s, stored %s (%s), WAL %s..%s\n",
                         b.parent.empty() ? b.kind.c_str() : (b.type + " (parent " + b.parent + ")").c_str(),
                         b.id.c_str(), human_bytes(b.original_bytes).c_str(), fmt_seconds(b.backup_seconds).c_str(),
                         human_bytes(b.stored_bytes).c_str(), b.compression.c_str(), b.start_lsn.c_str(),
                         b.stop_lsn.c_str());
        std::fflush(stderr);
        std::printf("%s\n", b.id.c_str());
    }
    return 0;
}

int run_list(const IdArgs& a)
{
    repo::Staging staging(a.dir);
    staging.fetch_catalog();
    CatalogListing l = load_catalog(staging.local());
    for (const auto& p : staging.partial_backups())
        l.unusable.emplace_back(p.id, p.reason);
    if (a.json) {
        json out = json::array();
        for (const auto& b : l.backups)
            out.push_back(summary_json(b));
        json unusable = json::array();
        for (const auto& [name, why] : l.unusable)
            unusable.push_back({{"folder", name}, {"reason", why}});
        std::printf("%s\n", json_text(json{{"backups", out}, {"unusable", unusable}}).c_str());
        return 0;
    }
    std::printf("%-20s %-8s %-20s %-12s %10s %10s %-9s %s\n", "ID", "KIND", "FINISHED", "STOP LSN", "SIZE",
                "STORED", "VERIFIED", "LABEL");
    for (const auto& b : l.backups) {
        std::string verified = !b.verify_ok ? "no" : *b.verify_ok ? "yes" : "FAILED";
        std::string label = b.kind == "logical" ? "db " + b.database + ": " + b.label : b.label;
        if (!b.parent.empty())
            label = b.type + " of " + b.parent + ": " + label;
        std::printf("%-20s %-8s %-20s %-12s %10s %10s %-9s %s\n", b.id.c_str(), b.kind.c_str(),
                    b.finished_at.c_str(), b.stop_lsn.c_str(), human_bytes(b.original_bytes).c_str(),
                    human_bytes(b.stored_bytes).c_str(), verified.c_str(), label.c_str());
    }
    for (const auto& [name, why] : l.unusable)
        std::printf("(%s: %s)\n", name.c_str(), why.c_str());
    return 0;
}

// The backup and every parent of its chain: in place for a folder, fetched into the
// scratch folder for s3://. Unknown IDs throw like load_backup.
BackupInfo fetch_with_parents(repo::Staging& staging, const std::string& id)
{
    staging.fetch(id);
    BackupInfo b = load_backup(staging.local(), id);
    if (!staging.remote())
        return b;  // the chain code reads the parents in place and names a missing one
    std::string child = id, parent = b.parent;
    for (int depth = 0; !parent.empty(); ++depth) {
        if (depth > 1000)
            throw Error(sqlstate::data_exception, "backup " + id + ": its chain of parents does not end");
        try {
            staging.fetch(parent);
        } catch (const Error&) {
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        "backup " + child + " needs its parent " + parent + ", which is not in the catalog");
        }
        child = parent;
        parent = load_backup(staging.local(), parent).parent;
    }
    return b;
}

int run_verify(const IdArgs& a)
{
    load_backup_secret_if_any(a.key_file);
    repo::Staging staging(a.dir);
    BackupInfo b = fetch_with_parents(staging, a.id);
    // Without the key nothing can be checked: that says nothing about the backup.
    require_backup_key(b);
    std::string path = staging.local() + "/" + a.id;
    double t0 = monotonic_seconds();
    bool ok = true;
    std::string detail = "ok";
    try {
        if (b.kind == "physical")
            verify_backup_chain(staging.local(), b, a.quiet || a.json);
        else
            verify_logical_backup(path, b, a.quiet || a.json);
    } catch (const Error& e) {
        ok = false;
        detail = e.what();
    }
    b.verified_at = now_iso8601();
    b.verify_ok = ok;
    b.verify_seconds = seconds_since(t0);
    write_description(path, b);
    staging.publish_description(b.id);
    note(record_verification_in_database(a.conn.conninfo, b, ok, detail), a.quiet || a.conn.conninfo.empty());
    if (a.json)
        std::printf("%s\n",
                    json_text(json{{"id", b.id}, {"ok", ok}, {"detail", detail}, {"seconds", *b.verify_seconds}})
                        .c_str());
    else if (ok && !a.quiet)
        std::printf("backup %s verified: every file matches%s (%s)\n", b.id.c_str(),
                    b.parent.empty() ? "" : ", every block of its chain too",
                    fmt_seconds(*b.verify_seconds).c_str());
    if (!ok)
        throw Error("XX001", "backup " + b.id + " is damaged: " + detail);
    return 0;
}

int run_drill(const IdArgs& a)
{
    load_backup_secret_if_any(a.key_file);
    repo::Staging staging(a.dir);
    BackupInfo b = fetch_with_parents(staging, a.id);
    require_backup_key(b);
    DrillOptions opts;
    opts.conninfo = a.conn.conninfo;
    opts.scratch = a.scratch;
    opts.os_user = a.os_user;
    opts.quiet = a.quiet || a.json;
    DrillReport r = drill_backup(staging.local(), b, opts);
    staging.publish_description(b.id);
    if (a.json)
        std::printf("%s\n", json_text(json{{"id", b.id},
                                           {"ok", r.ok},
                                           {"restore_seconds", r.restore_seconds},
                                           {"check_seconds", r.check_seconds},
                                           {"detail", r.detail}})
                                 .c_str());
    else
        std::printf("drill of %s: %s; restored in %s, checked in %s\n", b.id.c_str(),
                    r.ok ? "passed" : "FAILED", fmt_seconds(r.restore_seconds).c_str(),
                    fmt_seconds(r.check_seconds).c_str());
    if (!r.ok)
        throw Error("XX001", "drill of backup " + b.id + " failed: " + r.detail);
    return 0;
}

int run_prune(const PruneArgs& a)
{
    repo::Staging staging(a.dir);
    staging.fetch_catalog();
    CatalogListing l = load_catalog(staging.local());
    RetentionPolicy p;
    p.keep_last = a.keep_last;
    if (a.keep_days >= 0)
        p.keep_days = a.keep_days;
    p.now = std::time(nullptr);
    p.system_identifier = a.system_identifier;
    auto decisions = decide_retention(l.backups, p);
    // An incremental backup is restorable only with its parents.
    keep_needed_parents(l.backups, decisions);

    json out = json::array();
    for (const auto& d : decisions) {
        if (!d.keep && !a.dry_run && staging.remote()) {
            staging.remove_backup(d.id);
        } else if (!d.keep && !a.dry_run) {
            // Out of the catalog first (rename), then gone: a crash leaves no half backup.
            std::string from = a.dir + "/" + d.id;
            std::string doomed = a.dir + "/" + kPartialPrefix + "deleting-" + d.id;
            if (::rename(from.c_str(), doomed.c_str()) != 0)
                throw Error("58030", "could not remove backup " + d.id + ": " + std::strerror(errno));
            fsync_dir(a.dir);
            remove_tree(doomed);
        }
        std::string action = d.keep ? "keep" : a.dry_run ? "would delete" : "deleted";
        if (a.json)
            out.push_back({{"id", d.id}, {"keep", d.keep}, {"reason", d.reason}});
        else
            std::printf("%-20s %-12s %s\n", d.id.c_str(), action.c_str(), d.reason.c_str());
    }
    // Folders of runs that were killed: no process owns them any more.
    for (const auto& [name, why] : l.unusable) {
        if (name.rfind(kPartialPrefix, 0) != 0 || !partial_folder_abandoned(a.dir + "/" + name))
            continue;
        if (!a.dry_run)
            remove_tree(a.dir + "/" + name);
        if (a.json)
            out.push_back({{"folder", name}, {"keep", false}, {"reason", "abandoned partial backup"}});
        else
            std::printf("%-20s %-12s %s\n", name.c_str(), a.dry_run ? "would delete" : "deleted",
                        "abandoned partial backup");
    }
    // Uploads that failed: abandoned once nothing was added to them for a while.
    for (const auto& pb : staging.partial_backups()) {
        if (pb.age_seconds < repo::abandoned_after_seconds())
            continue;
        if (!a.dry_run)
            staging.remove_partial(pb.id);
        if (a.json)
            out.push_back({{"folder", pb.id}, {"keep", false}, {"reason", "abandoned: " + pb.reason}});
        else
            std::printf("%-20s %-12s abandoned: %s\n", pb.id.c_str(), a.dry_run ? "would delete" : "deleted",
                        pb.reason.c_str());
    }
    json wal = staging.remote()
                   ? repo::prune_remote_wal(staging.repository(), l, decisions, a.dry_run, a.json)
                   : walbackups::prune_wal(a.dir, l, decisions, a.dry_run, a.json);
    if (a.json)
        std::printf("%s\n", json_text(json{{"dry_run", a.dry_run}, {"decisions", out}, {"wal", wal}}).c_str());
    return 0;
}

// --table / --into: one table or one database into another server.
int run_restore_object(const RestoreArgs& a, const std::string& local_dir, const BackupInfo& b)
{
    if (!a.target.empty() || a.standby || a.clean || walbackups::has_target(a.recovery))
        throw Error(sqlstate::invalid_parameter_value,
                    "--into restores one table or database: --target, --standby, --clean and recovery targets do not "
                    "apply");
    if (a.into.empty())
        throw Error(sqlstate::invalid_parameter_value, "--table needs --into CONNINFO (the target database)");
    ObjectRestoreOptions o;
    o.table = a.table;
    o.database = a.database;
    o.into = a.into;
    o.scratch = a.scratch;
    o.os_user = a.os_user;
    o.quiet = a.quiet || a.json;
    double t0 = monotonic_seconds();
    ObjectRestoreReport r = restore_object(local_dir, b, o);
    double secs = seconds_since(t0);
    if (a.json) {
        std::printf("%s\n", json_text(json{{"id", b.id},
                                           {"kind", b.kind},
                                           {"source_database", r.source_database},
                                           {"table", a.table.empty() ? json(nullptr) : json(a.table)},
                                           {"rows", r.rows},
                                           {"seconds", secs}})
                                 .c_str());
    } else if (!a.quiet) {
        if (a.table.empty())
            std::printf("restored database %s of backup %s: row counts match for %zu tables (%s)\n",
                        r.source_database.c_str(), b.id.c_str(), r.rows.size(), fmt_seconds(secs).c_str());
        else
            std::printf("restored table %s of backup %s (database %s): %lld rows, as in the backup (%s)\n",
                        a.table.c_str(), b.id.c_str(), r.source_database.c_str(),
                        static_cast<long long>(r.rows.begin()->second), fmt_seconds(secs).c_str());
    }
    return 0;
}

int run_restore(const RestoreArgs& a)
{
    load_backup_secret_if_any(a.key_file);
    repo::Staging staging(a.dir);
    BackupInfo b = fetch_with_parents(staging, a.id);
    require_backup_key(b);
    if (!a.table.empty() || !a.into.empty())
        return run_restore_object(a, staging.local(), b);
    bool pitr = walbackups::has_target(a.recovery);
    std::string wal_key;
    if (pitr) {
        walbackups::check_restore_target(a.recovery, b, a.standby);
        wal_key = walbackups::wal_restore_key(a.dir, a.key_file, false);
    }
    std::string path = staging.local() + "/" + a.id;
    double t0 = monotonic_seconds();
    json out = {{"id", b.id}, {"kind", b.kind}};
    if (b.kind == "physical") {
        if (a.target.empty())
            throw Error(sqlstate::invalid_parameter_value,
                        "backup " + b.id + " is physical: restore it with --target DATADIR");
        PhysicalRestoreOptions o;
        o.target = a.target;
        for (const auto& m : a.tablespace_mapping) {
            auto eq = m.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
                throw Error(sqlstate::invalid_parameter_value, "--tablespace-mapping wants OLD=NEW, got \"" + m + "\"");
            o.tablespace_map.emplace_back(m.substr(0, eq), m.substr(eq + 1));
        }
        o.standby = a.standby;
        o.primary_conninfo = a.primary_conninfo;
        o.quiet = a.quiet || a.json;
        RestoreReport r = restore_backup_chain(staging.local(), b, o);
        if (pitr)
            out["recovery_target"] = walbackups::apply_restore_target(r.target, a.dir, a.recovery, wal_key);
        out["target"] = r.target;
        out["files"] = r.files;
        out["bytes"] = r.bytes;
        if (!a.json && !a.quiet) {
            std::printf("restored backup %s into %s: %llu files, %s in %s\n", b.id.c_str(), r.target.c_str(),
                        static_cast<unsigned long long>(r.files), human_bytes(r.bytes).c_str(),
                        fmt_seconds(seconds_since(t0)).c_str());
            for (const auto& [oid, loc] : r.tablespaces)
                std::printf("tablespace %s in %s\n", oid.c_str(), loc.c_str());
            if (pitr)
                std::printf("recovery from %s/wal: %s\n", a.dir.c_str(),
                            out["recovery_target"].get<std::string>().c_str());
            std::printf("start it with: pg_ctl -D %s start%s\n", r.target.c_str(),
                        a.standby ? " (it follows the primary as a standby)" : "");
        }
    } else {
        if (a.database.empty())
            throw Error(sqlstate::invalid_parameter_value,
                        "backup " + b.id + " is logical: restore it with --database NAME");
        LogicalRestoreOptions o;
        o.conninfo = a.conn.conninfo;
        o.database = a.database;
        o.clean = a.clean;
        o.jobs = a.jobs;
        o.quiet = a.quiet || a.json;
        LogicalRestoreReport r = restore_logical_backup(path, b, o);
        out["database"] = a.database;
        out["tables_checked"] = r.tables_checked;
        if (!a.json && !a.quiet)
            std::printf("restored backup %s into database %s in %s; row counts match for %zu tables\n",
                        b.id.c_str(), a.database.c_str(), fmt_seconds(seconds_since(t0)).c_str(),
                        r.tables_checked);
    }
    out["seconds"] = seconds_since(t0);
    if (a.json)
        std::printf("%s\n", json_text(out).c_str());
    return 0;
}

void add_backup_commands(CLI::App& app)
{
    auto* backup = app.add_subcommand("backup", "verified physical and logical backups with a catalog");
    backup->require_subcommand(1);

    static CreateArgs create;
    auto* c = backup->add_subcommand("create", "take a backup and print its ID");
    c->add_option("--dir", create.dir, "backup folder (one subfolder per backup) or s3://BUCKET/PREFIX")->required();
    add_connection_option(c, create.conn);
    c->add_flag("--logical", create.logical, "one database through pg_dump instead of the whole cluster");
    c->add_option("--database", create.database, "database of a --logical backup");
    c->add_option("--compress", create.compress, "gzip (default), zstd or none")
        ->check(CLI::IsMember({"gzip", "zstd", "none"}));
    c->add_option("--level", create.level, "compression level (gzip 1-9, default 6; zstd 1-19, default 3)");
    c->add_option("--label", create.label, "label recorded with the backup");
    c->add_option("-j,--jobs", create.jobs, "threads compressing / pg_dump jobs (default: one per core)");
    c->add_option("--max-rate", create.max_rate, "physical: limit the server to this many kB/s (32-1048576)")
        ->check(CLI::Range(32, 1048576));
    c->add_flag("--incremental", create.incremental,
                "physical: only the blocks changed since the newest backup (or --from ID)");
    c->add_flag("--differential", create.differential,
                "physical: only the blocks changed since the newest full backup (or --from ID)");
    c->add_option("--from", create.from, "the parent backup of an --incremental or --differential one");
    c->add_flag("--encrypt", create.encrypt,
                "AES-256-GCM encrypt the stored archives or dump (key from --key-file or $WARDEN_BACKUP_PASSPHRASE)");
    c->add_option("--key-file", create.key_file, "file holding the key or passphrase for --encrypt");
    c->add_flag("--json", create.json, "print the result as JSON");
    c->add_flag("--quiet", create.quiet, "no progress or summary, only the ID");
    on_run(c, [] { return run_create(create); });

    static IdArgs list;
    auto* l = backup->add_subcommand("list", "list the backups of a backup folder");
    l->add_option("--dir", list.dir, "backup folder or s3://BUCKET/PREFIX")->required();
    l->add_flag("--json", list.json, "print JSON");
    on_run(l, [] { return run_list(list); });

    static IdArgs verify;
    auto* v = backup->add_subcommand("verify", "re-read a backup and check every file");
    v->add_option("--dir", verify.dir, "backup folder or s3://BUCKET/PREFIX")->required();
    v->add_option("id", verify.id, "backup ID")->required();
    add_connection_option(v, verify.conn);
    v->add_option("--key-file", verify.key_file, "key of an encrypted backup (else $WARDEN_BACKUP_PASSPHRASE)");
    v->add_flag("--json", verify.json, "print JSON");
    v->add_flag("--quiet", verify.quiet, "no progress");
    on_run(v, [] { return run_verify(verify); });

    static IdArgs drill;
    auto* d = backup->add_subcommand("drill", "restore into a scratch cluster or database and check it");
    d->add_option("--dir", drill.dir, "backup folder or s3://BUCKET/PREFIX")->required();
    d->add_option("id", drill.id, "backup ID")->required();
    add_connection_option(d, drill.conn);
    d->add_option("--scratch", drill.scratch, "where the scratch cluster goes (default: a temporary folder)");
    d->add_option("--os-user", drill.os_user,
                  "run as root: the account the scratch server runs as (default: the owner of --dir, else "
                  "postgres)");
    d->add_option("--key-file", drill.key_file, "key of an encrypted backup (else $WARDEN_BACKUP_PASSPHRASE)");
    d->add_flag("--json", drill.json, "print JSON");
    d->add_flag("--quiet", drill.quiet, "no progress");
    on_run(d, [] { return run_drill(drill); });

    static PruneArgs prune;
    auto* p = backup->add_subcommand("prune", "delete backups a retention policy no longer keeps");
    p->add_option("--dir", prune.dir, "backup folder or s3://BUCKET/PREFIX")->required();
    p->add_option("--keep-last", prune.keep_last, "keep the newest N backups of each series")->required();
    p->add_option("--keep-days", prune.keep_days, "also keep backups younger than D days");
    p->add_option("--system-identifier", prune.system_identifier,
                  "prune this system's backups (default: the system of the newest backup)");
    p->add_flag("--dry-run", prune.dry_run, "only show the decisions");
    p->add_flag("--json", prune.json, "print JSON");
    on_run(p, [] { return run_prune(prune); });

    static RestoreArgs restore;
    auto* r = app.add_subcommand("restore", "restore a backup: physical into a directory, logical into a database");
    r->add_option("--dir", restore.dir, "backup folder or s3://BUCKET/PREFIX")->required();
    r->add_option("id", restore.id, "backup ID")->required();
    r->add_option("--target", restore.target, "new data directory (physical backups)");
    r->add_option("--tablespace-mapping", restore.tablespace_mapping,
                  "OLD=NEW: put the tablespace at OLD (location or OID) in NEW (repeatable)")
        ->allow_extra_args(false);
    r->add_flag("--standby", restore.standby, "set the copy up as a streaming standby");
    r->add_option("--primary-conninfo", restore.primary_conninfo, "what the standby connects to");
    r->add_option("--database", restore.database,
                  "target database (logical backups); with --into: the database to take from the backup");
    r->add_option("--table", restore.table, "SCHEMA.NAME: restore only this table (needs --into)");
    r->add_option("--into", restore.into, "CONNINFO of the database one table or database is restored into");
    r->add_option("--scratch", restore.scratch, "with --into, physical: where the scratch server goes");
    r->add_option("--os-user", restore.os_user, "with --into, physical, as root: the scratch server's account");
    r->add_flag("--clean", restore.clean, "drop the database's objects before restoring (logical)");
    r->add_option("-j,--jobs", restore.jobs, "pg_restore jobs (default: one per core)");
    add_connection_option(r, restore.conn);
    r->add_option("--key-file", restore.key_file, "key of an encrypted backup (else $WARDEN_BACKUP_PASSPHRASE)");
    r->add_flag("--json", restore.json, "print JSON");
    r->add_flag("--quiet", restore.quiet, "no progress or summary");
    recovery::add_target_options(r, restore.recovery);
    on_run(r, [] { return run_restore(restore); });
}

}  // namespace

static const bool registered = add_command_group(30, add_backup_commands);

}  // namespace warden::cli
