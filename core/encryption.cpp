#include "encryption.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "error.hpp"

namespace warden {

namespace {

constexpr int kRounds = 100000;

void derive(std::string_view secret, const unsigned char* salt, std::size_t salt_len, unsigned char* out,
            std::size_t out_len)
{
    if (PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()), salt, static_cast<int>(salt_len), kRounds,
                          EVP_sha256(), static_cast<int>(out_len), out) != 1)
        throw Error(sqlstate::internal_error, "PBKDF2 failed");
}

void random_bytes(unsigned char* out, std::size_t len)
{
    if (RAND_bytes(out, static_cast<int>(len)) != 1)
        throw Error(sqlstate::internal_error, "no random bytes from OpenSSL");
}

std::string hex(const unsigned char* p, std::size_t len)
{
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < len; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

std::string unhex(const std::string& h)
{
    std::string out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

void segment_nonce(const unsigned char* base, std::uint64_t index, unsigned char* out)
{
    std::memcpy(out, base, 12);
    for (int i = 0; i < 8; ++i)
        out[4 + i] ^= static_cast<unsigned char>(index >> (8 * (7 - i)));
}

std::string aad(const std::string& header, std::uint64_t index, const unsigned char* word)
{
    std::string a = header;
    for (int i = 7; i >= 0; --i)
        a += static_cast<char>((index >> (8 * i)) & 0xff);
    a.append(reinterpret_cast<const char*>(word), 4);
    return a;
}

using Ctx = std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)>;

}  // namespace

std::string random_hex(std::size_t bytes)
{
    std::string raw(bytes, '\0');
    random_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes);
    return hex(reinterpret_cast<const unsigned char*>(raw.data()), bytes);
}

std::string key_check(std::string_view secret, const std::string& salt_hex)
{
    std::string salt = unhex(salt_hex);
    unsigned char out[16];
    derive(secret, reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), out, sizeof out);
    return hex(out, sizeof out);
}

bool looks_encrypted(std::string_view first_bytes)
{
    return first_bytes.substr(0, kEncryptedMagic.size()) == kEncryptedMagic;
}

FileSealer::FileSealer(std::string_view secret)
{
    unsigned char salt[16];
    random_bytes(salt, sizeof salt);
    random_bytes(nonce_, sizeof nonce_);
    derive(secret, salt, sizeof salt, key_, sizeof key_);
    header_ = std::string(kEncryptedMagic);
    header_.append(reinterpret_cast<const char*>(salt), sizeof salt);
    header_.append(reinterpret_cast<const char*>(nonce_), sizeof nonce_);
}

std::string FileSealer::seal(std::string_view plain, bool last)
{
    if (plain.size() > kMaxSegment)
        throw Error(sqlstate::internal_error, "segment too large to encrypt");
    std::uint32_t word = static_cast<std::uint32_t>(plain.size()) | (last ? 0x80000000u : 0);
    unsigned char w[4] = {static_cast<unsigned char>(word >> 24), static_cast<unsigned char>(word >> 16),
                          static_cast<unsigned char>(word >> 8), static_cast<unsigned char>(word)};
    unsigned char nonce[12];
    segment_nonce(nonce_, index_, nonce);
    std::string a = aad(header_, index_, w);
    Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    std::string out(reinterpret_cast<const char*>(w), 4);
    out.resize(4 + plain.size() + 16);
    int len = 0;
    auto* dst = reinterpret_cast<unsigned char*>(out.data()) + 4;
    bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_, nonce) == 1 &&
              EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(a.data()),
                                static_cast<int>(a.size())) == 1 &&
              EVP_EncryptUpdate(ctx.get(), dst, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                                static_cast<int>(plain.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx.get(), dst + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, dst + plain.size()) == 1;
    if (!ok)
        throw Error(sqlstate::internal_error, "AES-256-GCM encryption failed");
    ++index_;
    return out;
}

FileOpener::FileOpener(std::string_view secret, std::string_view header)
{
    if (header.size() != kEncryptedHeaderSize || !looks_encrypted(header))
        throw Error("XX001", "not an encrypted backup file (no WARDNC01 header)");
    header_ = std::string(header);
    std::memcpy(nonce_, header.data() + 24, sizeof nonce_);
    derive(secret, reinterpret_cast<const unsigned char*>(header.data()) + 8, 16, key_, sizeof key_);
}

std::uint32_t FileOpener::segment_length(const unsigned char* w, bool& last)
{
    std::uint32_t word = (std::uint32_t{w[0]} << 24) | (std::uint32_t{w[1]} << 16) | (std::uint32_t{w[2]} << 8) | w[3];
    last = (word & 0x80000000u) != 0;
    std::uint32_t len = word & 0x7fffffffu;
    if (len > kMaxSegment)
        throw Error("XX001", "encrypted segment of " + std::to_string(len) + " bytes: damaged");
    return len;
}

std::string FileOpener::open(std::string_view segment)
{
    if (finished_)
        throw Error("XX001", "data after the last encrypted segment");
    if (segment.size() < kSegmentOverhead)
        throw Error("XX001", "encrypted segment cut short");
    const auto* w = reinterpret_cast<const unsigned char*>(segment.data());
    bool last = false;
    std::uint32_t len = segment_length(w, last);
    if (segment.size() != kSegmentOverhead + len)
        throw Error("XX001", "encrypted segment cut short");
    unsigned char nonce[12];
    segment_nonce(nonce_, index_, nonce);
    std::string a = aad(header_, index_, w);
    Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    std::string out(len, '\0');
    int n = 0;
    const auto* src = w + 4;
    unsigned char tag[16];
    std::memcpy(tag, src + len, 16);
    bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_, nonce) == 1 &&
              EVP_DecryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(a.data()),
                                static_cast<int>(a.size())) == 1 &&
              EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, src,
                                static_cast<int>(len)) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
              EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &n) == 1;
    if (!ok)
        throw Error("XX001", "encrypted segment " + std::to_string(index_) +
                                 " does not authenticate (wrong key, or the file was changed)");
    ++index_;
    finished_ = last;
    return out;
}

bool FileOpener::next(const std::function<std::size_t(char*, std::size_t)>& read, std::string& plain)
{
    if (finished_) {
        char extra;
        if (read(&extra, 1) != 0)
            throw Error("XX001", "data after the last encrypted segment");
        return false;
    }
    std::string seg(4, '\0');
    if (read(seg.data(), 4) != 4)
        throw Error("XX001", "truncated: the last encrypted segment is missing");
    bool last = false;
    std::uint32_t len = segment_length(reinterpret_cast<const unsigned char*>(seg.data()), last);
    seg.resize(kSegmentOverhead + len);
    if (read(seg.data() + 4, seg.size() - 4) != seg.size() - 4)
        throw Error("XX001", "truncated: encrypted segment cut short");
    plain = open(seg);
    return true;
}

std::uint64_t sealed_size_bound(std::uint64_t plain)
{
    return kEncryptedHeaderSize + (plain / kBufferSegment + 1) * kSegmentOverhead + plain;
}

std::string seal_buffer(std::string_view secret, std::string_view plain)
{
    FileSealer sealer(secret);
    std::string out = sealer.header();
    out.reserve(static_cast<std::size_t>(sealed_size_bound(plain.size())));
    std::size_t pos = 0;
    do {
        std::size_t n = std::min(kBufferSegment, plain.size() - pos);
        out += sealer.seal(plain.substr(pos, n), pos + n == plain.size());
        pos += n;
    } while (pos < plain.size());
    return out;
}

std::string open_buffer(std::string_view secret, std::string_view sealed, std::uint64_t limit)
{
    if (sealed.size() < kEncryptedHeaderSize)
        throw Error("XX001", "truncated: shorter than an encrypted file's header");
    FileOpener opener(secret, sealed.substr(0, kEncryptedHeaderSize));
    std::string out;
    std::size_t pos = kEncryptedHeaderSize;
    while (!opener.finished()) {
        if (sealed.size() - pos < 4)
            throw Error("XX001", "truncated: the last encrypted segment is missing");
        bool last = false;
        std::uint32_t len = FileOpener::segment_length(reinterpret_cast<const unsigned char*>(sealed.data()) + pos, last);
        if (out.size() + len > limit)
            throw Error("XX001", "encrypted content of more than " + std::to_string(limit) + " bytes: damaged");
        if (sealed.size() - pos < kSegmentOverhead + len)
            throw Error("XX001", "truncated: encrypted segment cut short");
        out += opener.open(sealed.substr(pos, kSegmentOverhead + len));
        pos += kSegmentOverhead + len;
    }
    if (pos != sealed.size())
        throw Error("XX001", "data after the last encrypted segment");
    return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data)
{
    unsigned char out[32];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out, &len))
        throw Error(sqlstate::internal_error, "HMAC-SHA256 failed");
    return hex(out, len);
}

ArchiveKeys archive_keys(std::string_view secret, const std::string& salt_hex)
{
    std::string salt = unhex(salt_hex);
    unsigned char root[32];
    derive(secret, reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), root, sizeof root);
    std::string_view r(reinterpret_cast<const char*>(root), sizeof root);
    ArchiveKeys k;
    k.key_check = hmac_sha256_hex(r, "warden wal archive key check").substr(0, 32);
    k.mac_key = unhex(hmac_sha256_hex(r, "warden wal archive checksums"));
    return k;
}

}  // namespace warden
