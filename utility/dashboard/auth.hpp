// Basic authentication for `warden dashboard`: an auth file of users and password hashes.
//
// One line per user: `name:pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX` (PBKDF2-HMAC-SHA256
// from OpenSSL; bcrypt is not in OpenSSL, so not offered). `warden dashboard
// --hash-password NAME` prints such a line. The file must be a regular file of this user,
// mode 0600, not a symlink, else it is refused: it guards a monitoring view of the server.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace warden::dashboard {

struct PasswordHash {
    unsigned iterations = 0;
    std::string salt;  // raw bytes
    std::string hash;  // raw bytes, 32
};

class AuthFile {
public:
    // Throws warden::Error with a one-line reason when the file is unsafe or malformed.
    static std::shared_ptr<AuthFile> load(const std::string& path);

    // The value of an Authorization header ("Basic base64(user:password)"): true when
    // it names a user of the file with the right password. Compares in constant time.
    bool check_header(const std::string& header) const;

private:
    std::map<std::string, PasswordHash> users_;
    // Credentials already verified, as HMAC-SHA256 under a per-process key, so that every
    // request (a page and its scripts) does not cost a full PBKDF2 run.
    mutable std::mutex mutex_;
    mutable std::set<std::string> verified_;
    std::string cache_key_;
};

// A line for the auth file with a fresh random salt.
std::string hash_password_line(const std::string& user, const std::string& password,
                               unsigned iterations = 200000);

}  // namespace warden::dashboard
