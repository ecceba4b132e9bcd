#include "wal_archive.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <set>

#include "backup_key.hpp"
#include "checksum.hpp"
#include "encryption.hpp"
#include "error.hpp"

namespace warden::walarchive {

namespace {
constexpr const char* kIdentityFile = "archive.json";

bool g_encrypt = false;
bool g_key_file_given = false;

[[noreturn]] void throw_errno(const std::string& what, const fs::path& p)
{
    int e = errno;
    std::string msg = what + " \"" + p.string() + "\": " + std::strerror(e);
    // Disk full and quota get their own SQLSTATE so callers can say so plainly.
    throw Error(e == ENOSPC || e == EDQUOT ? "53100" : "58030", msg);
}

bool ends_with(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The name a file is stored under: segments compressed, small text files as they are.
std::string stored_name(const std::string& name)
{
    switch (wal::classify(name)) {
    case wal::FileKind::segment:
    case wal::FileKind::partial_segment:
        return name + ".zst";
    case wal::FileKind::history:
    case wal::FileKind::backup_label:
        return name;
    case wal::FileKind::other:
        break;
    }
    throw Error(sqlstate::invalid_parameter_value,
                "\"" + name + "\" is not a WAL segment, timeline history or backup history file name");
}

bool is_compressed(const std::string& stored) { return ends_with(stored, ".zst"); }

std::string checksum_line(const std::string& hex, const std::string& name)
{
    return hex + "  " + name + "\n";
}

// Small text files of the archive (history, backup history, checksums) are far below this;
// anything larger is damage, and refused before it is read.
constexpr std::uint64_t kTextFileLimit = 16 * 1024 * 1024;

// An open file of the archive; closes itself.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

// Opens a file for reading without following a symlink. nullopt only when it does not
// exist (ENOENT): every other failure (permission, a symlink, not a regular file) throws,
// so that a file that is there but cannot be served is never taken for an absent one.
std::optional<std::unique_ptr<Fd>> open_existing(const fs::path& p)
{
    int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::nullopt;
        if (errno == ELOOP)
            throw Error(sqlstate::data_exception, "\"" + p.string() + "\" is a symbolic link");
        throw_errno("could not open", p);
    }
    auto f = std::make_unique<Fd>(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0)
        throw_errno("could not stat", p);
    if (!S_ISREG(st.st_mode))
        throw Error(sqlstate::data_exception, "\"" + p.string() + "\" is not a regular file");
    return f;
}

// The whole content of an open file, refused (before reading) if larger than `limit`.
std::string read_fd_bounded(int fd, const fs::path& p, std::uint64_t limit)
{
    struct stat st;
    if (::fstat(fd, &st) != 0)
        throw_errno("could not stat", p);
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > limit)
        throw Error(sqlstate::data_exception, "\"" + p.string() + "\" has " + std::to_string(size) +
                                                  " bytes, more than the " + std::to_string(limit) +
                                                  " it may have");
    std::string out(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_errno("could not read", p);
        if (n == 0)
            break;
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

// The recorded checksum of a stored file, or nullopt if its .sha256 is missing or garbled;
// an unreadable one throws.
std::optional<std::string> recorded_checksum(const fs::path& stored)
{
    fs::path p = stored.string() + ".sha256";
    auto f = open_existing(p);
    if (!f)
        return std::nullopt;
    std::string text = read_fd_bounded((*f)->fd, p, 4096);
    std::string hex = text.substr(0, text.find_first_of(" \t\n"));
    if (hex.size() != 64)
        return std::nullopt;
    return hex;
}

void write_all(int fd, const char* data, std::size_t len, const fs::path& p)
{
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw_errno("could not write", p);
        }
        data += n;
        len -= static_cast<std::size_t>(n);
    }
}
}  // namespace

void request_encryption(bool encrypt, bool key_file_given)
{
    g_encrypt = encrypt;
    g_key_file_given = key_file_given;
}

bool encryption_requested() { return g_encrypt; }

fs::path backup_dir_from(const std::string& option)
{
    if (!option.empty())
        return option;
    if (const char* env = std::getenv("WARDEN_BACKUP_DIR"); env && *env)
        return env;
    throw Error(sqlstate::invalid_parameter_value,
                "no backup folder: give --dir BACKUPS or set WARDEN_BACKUP_DIR");
}

void fsync_path(const fs::path& p, bool directory)
{
    int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        throw_errno("could not open", p);
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    errno = saved;
    if (rc != 0)
        throw_errno("could not fsync", p);
}

void write_file_durably(const fs::path& dir, const std::string& name, const std::string& bytes)
{
    // Per-process temporary name: the receiver and `wal push` may store the same file at once.
    fs::path tmp = dir / (name + ".tmp." + std::to_string(::getpid()));
    fs::path final_path = dir / name;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0)
        throw_errno("could not create", tmp);
    try {
        write_all(fd, bytes.data(), bytes.size(), tmp);
        if (::fsync(fd) != 0)
            throw_errno("could not fsync", tmp);
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw_errno("could not close", tmp);
    }
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        throw_errno("could not rename into", final_path);
    }
    fsync_path(dir, true);
}

std::string read_file(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in)
        throw_errno("could not open", p);
    std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        throw_errno("could not read", p);
    return out;
}

std::string zstd_compress(const std::string& bytes, int level)
{
    std::string out(ZSTD_compressBound(bytes.size()), '\0');
    std::size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), level);
    if (ZSTD_isError(n))
        throw Error(sqlstate::internal_error,
                    std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

std::string zstd_decompress(const std::string& compressed, std::uint64_t limit, const std::string& what)
{
    auto corrupt = [&](const std::string& why) {
        return Error(sqlstate::data_exception, "\"" + what + "\" is corrupt: " + why);
    };
    // A header that claims more than a segment is refused at once; one that claims less
    // (or nothing) is still held to the limit below, since the claim itself is not trusted.
    unsigned long long claimed = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
    if (claimed == ZSTD_CONTENTSIZE_ERROR)
        throw Error(sqlstate::data_exception, "\"" + what + "\" is not a valid zstd file");
    if (claimed != ZSTD_CONTENTSIZE_UNKNOWN && claimed > limit)
        throw corrupt("its header claims " + std::to_string(claimed) + " bytes, more than the " +
                      std::to_string(limit) + " it may hold");
    std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (!dctx)
        throw std::bad_alloc();
    // The decoder's window never needs to exceed the content: a frame asking for more is
    // refused instead of allocated.
    int window_log = 10;
    while ((1ULL << window_log) < limit && window_log < 31)
        ++window_log;
    ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, window_log);
    // One byte more than allowed: output reaching it proves the content is too long.
    std::string out(static_cast<std::size_t>(limit) + 1, '\0');
    ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    for (;;) {
        std::size_t ret = ZSTD_decompressStream(dctx.get(), &ob, &in);
        if (ZSTD_isError(ret))
            throw corrupt(ZSTD_getErrorName(ret));
        if (ob.pos > limit)
            throw corrupt("it holds more than the " + std::to_string(limit) + " bytes it may hold");
        if (in.pos == in.size) {
            if (ret != 0)
                throw corrupt("truncated");
            break;
        }
    }
    out.resize(ob.pos);
    return out;
}

Archive::Archive(const fs::path& backup_dir, bool create) : dir_(backup_dir / "wal")
{
    std::error_code ec;
    if (!create && !fs::is_directory(dir_, ec))
        throw NotArchive("no WAL archive at " + dir_.string());
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_))
        throw Error("58030", "could not create the WAL folder \"" + dir_.string() +
                                 "\": " + (ec ? ec.message() : "not a directory"));
}

namespace {
struct Marker {
    std::string salt, key_check;
};

// encryption.json, validated; nullopt when the archive is not encrypted.
std::optional<Marker> read_marker(const fs::path& dir)
{
    fs::path p = dir / kEncryptionFile;
    auto f = open_existing(p);
    if (!f)
        return std::nullopt;
    auto j = nlohmann::json::parse(read_fd_bounded((*f)->fd, p, 4096), nullptr, false);
    auto hex_field = [&](const char* k, std::size_t len) {
        auto it = j.is_object() ? j.find(k) : j.end();
        if (it == j.end() || !it->is_string() || it->get<std::string>().size() != len ||
            it->get<std::string>().find_first_not_of("0123456789abcdef") != std::string::npos)
            throw Error(sqlstate::data_exception, "invalid " + p.string() + ": " + k + " must be " +
                                                      std::to_string(len) + " hex digits");
        return it->get<std::string>();
    };
    if (!j.is_object() || j.value("method", "") != "aes-256-gcm")
        throw Error(sqlstate::data_exception, "invalid " + p.string() + ": method must be \"aes-256-gcm\"");
    return Marker{hex_field("salt", 32), hex_field("key_check", 32)};
}

// Durable and exclusive: written under a temporary name, fsynced, then linked to its
// name, which fails if another push created it first. Returns false then.
bool create_marker(const fs::path& dir, const std::string& text)
{
    fs::path tmp = dir / (std::string(kEncryptionFile) + ".tmp." + std::to_string(::getpid()));
    write_file_durably(dir, tmp.filename().string(), text);
    fs::path final_path = dir / kEncryptionFile;
    int rc = ::link(tmp.c_str(), final_path.c_str());
    int e = errno;
    ::unlink(tmp.c_str());
    if (rc != 0 && e == EEXIST)
        return false;
    errno = e;
    if (rc != 0)
        throw_errno("could not create", final_path);
    fsync_path(dir, true);
    return true;
}
}  // namespace

bool is_stored_wal_file(std::string name)
{
    if (ends_with(name, ".zst"))
        name.resize(name.size() - 4);
    auto kind = wal::classify(name);
    return kind == wal::FileKind::segment || kind == wal::FileKind::history || kind == wal::FileKind::backup_label;
}

bool Archive::encrypted() const { return fs::exists(dir_ / kEncryptionFile); }

bool Archive::holds_stored_files() const
{
    for (const auto& entry : fs::directory_iterator(dir_)) {
        std::string n = entry.path().filename().string();
        if (n.find(".tmp") == std::string::npos && is_stored_wal_file(n))
            return true;
    }
    return false;
}

void Archive::unlock()
{
    std::lock_guard<std::mutex> lock(unlock_mu_);
    if (unlocked_)
        return;
    const std::string* secret = backup_secret();
    auto marker = read_marker(dir_);
    if (!marker && g_encrypt) {
        if (!secret)
            throw Error(sqlstate::invalid_parameter_value, "--encrypt needs a key: --key-file FILE or WARDEN_BACKUP_PASSPHRASE");
        if (holds_stored_files())
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        "the WAL archive " + dir_.string() +
                            " already holds unencrypted files: start an encrypted archive in a new backup folder");
        Marker m;
        m.salt = random_hex(16);
        m.key_check = archive_keys(*secret, m.salt).key_check;
        nlohmann::json j = {{"method", "aes-256-gcm"}, {"salt", m.salt}, {"key_check", m.key_check}};
        if (!create_marker(dir_, j.dump(2) + "\n"))
            marker = read_marker(dir_);  // another push was first: its key must be ours
        else
            marker = m;
    }
    if (marker) {
        if (!secret)
            throw Error(sqlstate::invalid_parameter_value,
                        "the WAL archive " + dir_.string() +
                            " is encrypted: give --key-file FILE or set WARDEN_BACKUP_PASSPHRASE");
        ArchiveKeys keys = archive_keys(*secret, marker->salt);
        if (keys.key_check != marker->key_check)
            throw Error(sqlstate::invalid_parameter_value,
                        "wrong key for the WAL archive " + dir_.string() +
                            ": it was encrypted with another key or passphrase");
        secret_ = *secret;
        mac_key_ = keys.mac_key;
    } else if (g_key_file_given) {
        throw Error(sqlstate::invalid_parameter_value,
                    "the WAL archive " + dir_.string() +
                        " is not encrypted (no encryption.json) but --key-file was given; to encrypt a new "
                        "archive, push with --encrypt");
    }
    unlocked_ = true;
}

std::string Archive::digest(const std::string& name, const std::string& bytes) const
{
    if (!secret_)
        return sha256_hex(bytes);
    std::string data = name;
    data += '\0';
    data += bytes;
    return hmac_sha256_hex(mac_key_, data);
}

std::string Archive::encode(const std::string& stored, const std::string& bytes) const
{
    std::string out = is_compressed(stored) ? zstd_compress(bytes) : bytes;
    return secret_ ? seal_buffer(*secret_, out) : out;
}

// The uncompressed, decrypted content of a stored file: a segment has exactly seg_size
// bytes, a timeline's last .partial at most that, a text file at most kTextFileLimit.
std::string Archive::content_fd(int fd, const fs::path& stored, std::uint64_t seg_size)
{
    unlock();
    std::string n = stored.filename().string();
    bool compressed = is_compressed(n);
    std::uint64_t plain_limit = compressed ? ZSTD_compressBound(seg_size) : kTextFileLimit;
    std::string raw = read_fd_bounded(fd, stored, secret_ ? sealed_size_bound(plain_limit) : plain_limit);
    if (secret_) {
        if (!looks_encrypted(raw))
            throw Error(sqlstate::data_exception,
                        "\"" + stored.string() + "\" is not encrypted, in an encrypted archive");
        try {
            raw = open_buffer(*secret_, raw, plain_limit);
        } catch (const Error& e) {
            throw Error(sqlstate::data_exception, "\"" + stored.string() + "\": " + e.what());
        }
    } else if (looks_encrypted(raw)) {
        throw Error(sqlstate::data_exception, "\"" + stored.string() + "\" is encrypted, but the archive has no " +
                                                  kEncryptionFile);
    }
    if (!compressed)
        return raw;
    std::string out = zstd_decompress(raw, seg_size, stored.string());
    bool partial = wal::classify(n.substr(0, n.size() - 4)) == wal::FileKind::partial_segment;
    if (!partial && out.size() != seg_size)
        throw Error(sqlstate::data_exception, "\"" + stored.string() + "\" holds " +
                                                  std::to_string(out.size()) + " bytes, not the segment size " +
                                                  std::to_string(seg_size));
    return out;
}

std::string Archive::content(const fs::path& stored, std::uint64_t seg_size)
{
    auto f = open_existing(stored);
    if (!f)
        throw NotFound(stored.filename().string() + " is not in the archive " +
                       stored.parent_path().string());
    return content_fd((*f)->fd, stored, seg_size);
}

PushOutcome Archive::push(const fs::path& source)
{
    std::string name = source.filename().string();
    stored_name(name);  // rejects an unexpected name before reading anything
    unlock();
    std::string bytes = read_file(source);
    if (wal::classify(name) == wal::FileKind::segment && !identity())
        record_identity("", bytes.size());
    return store(name, bytes);
}

PushOutcome Archive::store(const std::string& name, const std::string& bytes)
{
    std::string stored = stored_name(name);
    unlock();
    std::string hex = digest(name, bytes);
    fs::path target = dir_ / stored;
    if (fs::exists(target)) {
        auto recorded = recorded_checksum(target);
        std::string existing = recorded ? *recorded : digest(name, content(target, segment_size()));
        if (existing == hex)
            return PushOutcome::already_present;
        std::string aside = stored + ".conflict-" + hex.substr(0, 12);
        write_file_durably(dir_, aside + ".sha256", checksum_line(hex, name));
        write_file_durably(dir_, aside, encode(stored, bytes));
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    name + " is already archived with different content (sha256 " +
                        existing.substr(0, 12) + "..., new " + hex.substr(0, 12) +
                        "...); the new copy is kept as " + aside);
    }
    write_file_durably(dir_, stored + ".sha256", checksum_line(hex, name));
    write_file_durably(dir_, stored, encode(stored, bytes));
    return PushOutcome::stored;
}

namespace {
// Writes the fetched file under a temporary name beside dest, then renames it: recovery
// never sees a half-written segment. The temporary name is created afresh (O_EXCL) and
// never through a symlink.
void write_fetched(const fs::path& dest, const std::string& bytes)
{
    fs::path tmp = dest;
    tmp += ".warden-fetch";
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
        throw_errno("could not remove", tmp);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        throw_errno("could not create", tmp);
    try {
        write_all(fd, bytes.data(), bytes.size(), tmp);
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw_errno("could not write", tmp);
    }
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        errno = e;
        throw_errno("could not rename into", dest);
    }
}
}  // namespace

void Archive::fetch(const std::string& name, const fs::path& dest)
{
    std::string stored = stored_name(name);
    // Read first: a damaged archive.json stops recovery even for a history file.
    const std::uint64_t seg = segment_size();
    // A wrong or missing key stops recovery even for a file that is not archived.
    unlock();
    const bool segment = wal::classify(name) == wal::FileKind::segment;
    fs::path source = dir_ / stored;
    std::string bytes;
    if (auto f = open_existing(source)) {
        try {
            bytes = content_fd((*f)->fd, source, seg);
        } catch (const Error& e) {
            throw Error(e.sqlstate(), "refusing " + name + ": " + e.what());
        }
        auto recorded = recorded_checksum(source);
        if (!recorded)
            throw Error(sqlstate::data_exception,
                        "refusing " + name + ": its checksum file " + stored + ".sha256 is missing");
        std::string hex = digest(name, bytes);
        if (hex != *recorded)
            throw Error(sqlstate::data_exception,
                        "refusing " + name + ": checksum mismatch (recorded " +
                            recorded->substr(0, 12) + "..., found " + hex.substr(0, 12) + "...)");
    } else if (auto ready = segment ? open_existing(dir_ / (name + ".ready")) : std::nullopt) {
        // Finished and fsynced by the receiver, not yet compressed.
        fs::path p = dir_ / (name + ".ready");
        bytes = read_fd_bounded((*ready)->fd, p, seg);
        if (bytes.size() != seg)
            throw Error(sqlstate::data_exception, "refusing " + name + ": " + p.filename().string() +
                                                      " holds " + std::to_string(bytes.size()) +
                                                      " bytes, not the segment size " + std::to_string(seg));
    } else if (auto live = segment ? open_existing(dir_ / (name + ".partial")) : std::nullopt) {
        // The receiver's live segment: recovery needs a full-size file; WAL ends at the
        // first zero page, which is where the receiver stopped.
        bytes = read_fd_bounded((*live)->fd, dir_ / (name + ".partial"), seg);
        bytes.resize(static_cast<std::size_t>(seg), '\0');
    } else {
        throw NotFound(name + " is not in the archive " + dir_.string());
    }
    write_fetched(dest, bytes);
}

const std::optional<Archive::Identity>& Archive::identity() const
{
    if (identity_loaded_)
        return identity_;
    fs::path p = dir_ / kIdentityFile;
    auto f = open_existing(p);
    identity_loaded_ = true;
    identity_.reset();
    if (!f)
        return identity_;
    auto bad = [&](const std::string& why) {
        return Error(sqlstate::data_exception, "invalid " + p.string() + ": " + why, "",
                     "It records the cluster's system identifier and WAL segment size; restore it from "
                     "a copy or remove it to have the next push or receiver write it again.");
    };
    auto j = nlohmann::json::parse(read_fd_bounded((*f)->fd, p, 65536), nullptr, false);
    if (!j.is_object())
        throw bad("not a JSON object");
    Identity id;
    auto seg = j.find("wal_segment_size");
    if (seg == j.end() || !seg->is_number_unsigned())
        throw bad("wal_segment_size must be a positive integer");
    id.segment_size = seg->get<std::uint64_t>();
    if (!wal::valid_segment_size(id.segment_size))
        throw bad("wal_segment_size " + std::to_string(id.segment_size) +
                  " is not a power of two from 1 MB to 1 GB");
    if (auto sys = j.find("system_identifier"); sys != j.end()) {
        if (!sys->is_string())
            throw bad("system_identifier must be a string");
        id.system_identifier = sys->get<std::string>();
    }
    identity_ = id;
    return identity_;
}

std::uint64_t Archive::segment_size() const
{
    const auto& id = identity();
    return id ? id->segment_size : wal::kDefaultSegmentSize;
}

std::optional<std::string> Archive::system_identifier() const
{
    const auto& id = identity();
    if (id && !id->system_identifier.empty())
        return id->system_identifier;
    return std::nullopt;
}

void Archive::record_identity(const std::string& system_identifier, std::uint64_t segment_size)
{
    wal::check_segment_size(segment_size, "WAL segment of " + dir_.string());
    const auto& id = identity();
    auto known = this->system_identifier();
    if (known && !system_identifier.empty() && *known != system_identifier)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "the WAL folder " + dir_.string() + " belongs to database system " + *known +
                        ", not to " + system_identifier,
                    "", "Use one backup folder per database cluster.");
    if (id && id->segment_size != segment_size)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "the WAL folder " + dir_.string() + " holds segments of " +
                        std::to_string(id->segment_size) + " bytes, not " + std::to_string(segment_size),
                    "", "Use one backup folder per database cluster.");
    if (known || (id && system_identifier.empty()))
        return;
    nlohmann::json j = {{"system_identifier", system_identifier},
                        {"wal_segment_size", segment_size}};
    write_file_durably(dir_, kIdentityFile, j.dump(2) + "\n");
    identity_loaded_ = false;
}

std::vector<wal::SegmentId> Archive::segments() const
{
    std::uint64_t seg = segment_size();
    std::vector<wal::SegmentId> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
        std::string n = entry.path().filename().string();
        bool finished = n.size() == 28 && ends_with(n, ".zst");
        bool live = (n.size() == 32 && ends_with(n, ".partial")) ||
                    (n.size() == 30 && ends_with(n, ".ready"));
        if (!finished && !live)
            continue;
        if (wal::classify(n.substr(0, 24)) != wal::FileKind::segment)
            continue;
        if (finished && !fs::exists(entry.path().string() + ".sha256"))
            continue;
        if (auto id = wal::parse_segment_name(n, seg))
            out.push_back(*id);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::optional<std::pair<wal::SegmentId, std::uint64_t>> Archive::live_partial() const
{
    std::uint64_t seg = segment_size();
    for (const auto& entry : fs::directory_iterator(dir_)) {
        std::string n = entry.path().filename().string();
        if (wal::classify(n) == wal::FileKind::partial_segment)
            if (auto id = wal::parse_segment_name(n, seg))
                return std::make_pair(*id, static_cast<std::uint64_t>(entry.file_size()));
    }
    return std::nullopt;
}

ArchiveStatus Archive::status() const
{
    ArchiveStatus st;
    auto now = fs::file_time_type::clock::now();
    auto age = [&](const fs::path& p) {
        std::error_code ec;
        auto t = fs::last_write_time(p, ec);
        return ec ? -1 : static_cast<std::int64_t>(
                             std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
    };
    // segment_size() reads archive.json: once, not twice per segment.
    const std::uint64_t seg = segment_size();
    std::string newest_name;
    std::optional<wal::SegmentId> newest;
    for (const auto& entry : fs::directory_iterator(dir_)) {
        std::string n = entry.path().filename().string();
        std::error_code ec;
        auto size = entry.file_size(ec);
        st.stored_bytes += ec ? 0 : size;
        if (n.find(".conflict-") != std::string::npos && !ends_with(n, ".sha256"))
            ++st.conflicts;
        if (n.size() == 28 && ends_with(n, ".zst") && wal::classify(n.substr(0, 24)) == wal::FileKind::segment) {
            ++st.segments;
            // Newest by segment number, then timeline: names sort that way within a
            // timeline only, so compare the parsed parts.
            auto id = wal::parse_segment_name(n, seg);
            if (id && (!newest || id->segno > newest->segno ||
                       (id->segno == newest->segno && id->tli > newest->tli))) {
                newest = id;
                newest_name = n;
            }
        }
    }
    if (!newest_name.empty()) {
        st.newest_segment = newest_name.substr(0, 24);
        st.newest_age_seconds = age(dir_ / newest_name);
    }
    if (auto live = live_partial()) {
        st.live_partial = wal::segment_name(live->first.tli, live->first.segno, seg);
        st.live_partial_age_seconds = age(dir_ / (st.live_partial + ".partial"));
    }
    fs::path lock = dir_ / "receiver.lock";
    int fd = ::open(lock.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
            st.receiver_running = true;
            char buf[32] = {};
            ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
            st.receiver_pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
            st.receiver_pid.erase(st.receiver_pid.find_last_not_of(" \n") + 1);
        }
        ::close(fd);
    }
    return st;
}

bool Archive::has_history(wal::TimeLine tli) const
{
    return fs::exists(dir_ / wal::history_name(tli));
}

std::string Archive::read_history(wal::TimeLine tli)
{
    return content(dir_ / wal::history_name(tli), segment_size());
}

VerifyReport Archive::verify(const std::vector<std::pair<wal::TimeLine, wal::Lsn>>& starts)
{
    VerifyReport report;
    std::uint64_t seg = segment_size();
    unlock();

    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_))
        names.insert(entry.path().filename().string());

    for (const auto& n : names) {
        if (ends_with(n, ".sha256") || n.find(".tmp") != std::string::npos ||
            n.find(".conflict-") != std::string::npos)
            continue;
        std::string logical = is_compressed(n) ? n.substr(0, n.size() - 4) : n;
        auto kind = wal::classify(logical);
        if (kind == wal::FileKind::other || (kind == wal::FileKind::partial_segment && !is_compressed(n)))
            continue;  // bookkeeping files and the receiver's live segment
        if (kind == wal::FileKind::segment && !is_compressed(n))
            continue;
        auto recorded = recorded_checksum(dir_ / n);
        if (!recorded) {
            report.problems.push_back({n, "no checksum file " + n + ".sha256"});
            continue;
        }
        std::string hex;
        try {
            hex = digest(logical, content(dir_ / n, seg));
        } catch (const std::exception& e) {
            report.problems.push_back({n, e.what()});
            continue;
        }
        if (hex != *recorded)
            report.problems.push_back({n, "checksum mismatch (recorded " + recorded->substr(0, 12) +
                                              "..., found " + hex.substr(0, 12) + "...)"});
        (kind == wal::FileKind::segment ? report.segments_checked : report.other_files_checked)++;
    }

    auto present = segments();
    wal::TimeLine newest = 0;
    for (const auto& s : present)
        newest = std::max(newest, s.tli);
    for (const auto& n : names)
        if (auto t = wal::parse_history_name(n))
            newest = std::max(newest, *t);
    report.newest_timeline = newest;
    if (present.empty())
        return report;

    std::vector<wal::HistoryEntry> history;
    if (newest > 1) {
        if (!has_history(newest)) {
            report.problems.push_back({wal::history_name(newest), "timeline history file missing"});
            return report;
        }
        try {
            history = wal::parse_history(read_history(newest));
        } catch (const std::exception& e) {
            report.problems.push_back({wal::history_name(newest), e.what()});
            return report;
        }
    }
    auto chain = wal::timeline_chain(newest, history);

    // Only segments on the newest timeline's ancestry count; abandoned branches do not.
    std::vector<wal::SegmentId> on_chain;
    for (const auto& s : present)
        if (wal::timeline_for_segment(chain, s.segno, seg) == s.tli)
            on_chain.push_back(s);
    if (on_chain.empty())
        return report;
    std::uint64_t oldest_segno = on_chain.front().segno, newest_segno = on_chain.front().segno;
    for (const auto& s : on_chain) {
        oldest_segno = std::min(oldest_segno, s.segno);
        newest_segno = std::max(newest_segno, s.segno);
    }
    report.oldest_segment = wal::segment_name(
        wal::timeline_for_segment(chain, oldest_segno, seg), oldest_segno, seg);
    report.newest_segment = wal::segment_name(
        wal::timeline_for_segment(chain, newest_segno, seg), newest_segno, seg);

    std::vector<wal::Lsn> from;
    for (const auto& [tli, lsn] : starts) {
        bool on_ancestry = std::any_of(chain.begin(), chain.end(),
                                       [&](const wal::TimelineSpan& t) { return t.tli == tli; });
        if (on_ancestry)
            from.push_back(lsn);
    }
    if (from.empty())
        from.push_back(wal::segment_start(oldest_segno, seg));
    std::sort(from.begin(), from.end());
    // The oldest start covers every later one.
    if (auto miss = wal::first_missing_segment(chain, from.front(), newest_segno, on_chain, seg))
        report.problems.push_back(
            {wal::segment_name(miss->tli, miss->segno, seg),
             "missing: needed to replay from " + wal::format_lsn(from.front()) + " to " +
                 report.newest_segment});
    return report;
}

}  // namespace warden::walarchive
