// Encryption at rest of stored backup files (docs/backup.md, "Encryption at rest"):
// AES-256-GCM through OpenSSL, in authenticated segments.
//
// File:    "WARDNC01" | salt (16) | nonce base (12)
// Segment: length (4, big-endian; top bit set on the last segment) | ciphertext | tag (16)
// The file key is PBKDF2-HMAC-SHA256(secret, salt, 100000 rounds): a fresh salt and nonce
// base per file, so no key/nonce pair is ever reused. Segment i is sealed with the nonce
// base XOR i and authenticates the header, i and its length word: a segment changed,
// dropped, reordered or moved to another file, or a file cut after any segment but the
// last, fails to open.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace warden {

inline constexpr std::string_view kEncryptedMagic = "WARDNC01";
inline constexpr std::size_t kEncryptedHeaderSize = 8 + 16 + 12;
inline constexpr std::size_t kSegmentOverhead = 4 + 16;
inline constexpr std::uint32_t kMaxSegment = 64u << 20;

// A key check recorded in backup.json: tells a wrong key from a damaged file before any
// file is read. PBKDF2 of the secret with its own salt (hex).
std::string key_check(std::string_view secret, const std::string& salt_hex);
std::string random_hex(std::size_t bytes);

class FileSealer {
public:
    explicit FileSealer(std::string_view secret);
    const std::string& header() const { return header_; }
    // The next segment; `last` marks the end of the file.
    std::string seal(std::string_view plain, bool last);

private:
    std::string header_;
    unsigned char key_[32];
    unsigned char nonce_[12];
    std::uint64_t index_ = 0;
};

class FileOpener {
public:
    // Throws warden::Error unless HEADER is an encrypted file's header.
    FileOpener(std::string_view secret, std::string_view header);
    // The plaintext length of the segment whose length word is WORD, and whether it is
    // the last; throws for a length beyond kMaxSegment.
    static std::uint32_t segment_length(const unsigned char* word, bool& last);
    // Opens the next segment (length word + ciphertext + tag); throws warden::Error
    // naming the segment when it does not authenticate.
    std::string open(std::string_view segment);
    // Reads the next segment through READ (which returns fewer bytes than asked only at
    // the end of the input) into PLAIN, authenticated; false once the last segment has
    // been opened and nothing follows it. Throws warden::Error for a cut or extended file.
    bool next(const std::function<std::size_t(char*, std::size_t)>& read, std::string& plain);
    bool finished() const { return finished_; }

private:
    std::string header_;
    unsigned char key_[32];
    unsigned char nonce_[12];
    std::uint64_t index_ = 0;
    bool finished_ = false;
};

bool looks_encrypted(std::string_view first_bytes);

// Whole files held in memory (the WAL archive): the same format, one segment per
// kBufferSegment bytes of input.
inline constexpr std::size_t kBufferSegment = 4u << 20;
std::string seal_buffer(std::string_view secret, std::string_view plain);
// Opens every segment; throws warden::Error for a wrong key, a changed, cut or extended
// file, or plaintext of more than `limit` bytes (refused before it is decrypted).
std::string open_buffer(std::string_view secret, std::string_view sealed, std::uint64_t limit);
// The largest sealed size of `plain` bytes: what a reader may accept before opening.
std::uint64_t sealed_size_bound(std::uint64_t plain);

// An encrypted WAL archive's keys, from one PBKDF2 of the secret with the archive's salt:
// a key check to record (hex) and a key for the checksums of its files, so that they tell
// nothing about the plaintext and bind each file to its name.
struct ArchiveKeys {
    std::string key_check;
    std::string mac_key;
};
ArchiveKeys archive_keys(std::string_view secret, const std::string& salt_hex);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace warden
