#include "dashboard/auth.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

#include "error.hpp"

namespace warden::dashboard {

namespace {

constexpr std::size_t kMaxAuthFileBytes = 64 * 1024;
constexpr unsigned kMinIterations = 10000;

[[noreturn]] void refuse(const std::string& path, const std::string& why)
{
    throw Error("28000", "auth file " + path + ": " + why);
}

std::string to_hex(const std::string& bytes)
{
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

bool from_hex(const std::string& hex, std::string& out)
{
    if (hex.size() % 2 != 0)
        return false;
    out.clear();
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int v = 0;
        for (std::size_t j = i; j < i + 2; j++) {
            char c = hex[j];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= c - '0';
            else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
            else return false;
        }
        out += static_cast<char>(v);
    }
    return true;
}

std::string pbkdf2(const std::string& password, const std::string& salt, unsigned iterations)
{
    unsigned char out[32];
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iterations),
                          EVP_sha256(), sizeof out, out) != 1)
        throw Error("XX000", "PBKDF2 failed");
    return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string random_bytes(std::size_t n)
{
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
        throw Error("XX000", "no random bytes from OpenSSL");
    return out;
}

bool base64_decode(const std::string& in, std::string& out)
{
    if (in.empty() || in.size() % 4 != 0 || in.size() > 4096)
        return false;
    std::vector<unsigned char> buf(in.size());
    int n = EVP_DecodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    if (n < 0)
        return false;
    // EVP_DecodeBlock counts the padding as zero bytes.
    std::size_t pad = in[in.size() - 1] == '=' ? (in[in.size() - 2] == '=' ? 2 : 1) : 0;
    out.assign(reinterpret_cast<char*>(buf.data()), static_cast<std::size_t>(n) - pad);
    return true;
}

std::string read_safely(const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            refuse(path, "is a symbolic link; name the file itself");
        refuse(path, std::strerror(errno));
    }
    struct stat st;
    std::string content;
    try {
        if (fstat(fd, &st) != 0)
            refuse(path, std::strerror(errno));
        if (!S_ISREG(st.st_mode))
            refuse(path, "is not a regular file");
        if (st.st_uid != geteuid())
            refuse(path, "belongs to another user");
        if ((st.st_mode & 077) != 0)
            refuse(path, "is readable or writable by others; chmod 600 it");
        if (st.st_size > static_cast<off_t>(kMaxAuthFileBytes))
            refuse(path, "is larger than 64 KiB");
        content.resize(static_cast<std::size_t>(st.st_size));
        std::size_t done = 0;
        while (done < content.size()) {
            ssize_t n = ::read(fd, content.data() + done, content.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                refuse(path, n < 0 ? std::strerror(errno) : "changed while being read");
            done += static_cast<std::size_t>(n);
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    return content;
}

}  // namespace

std::shared_ptr<AuthFile> AuthFile::load(const std::string& path)
{
    std::shared_ptr<AuthFile> file(new AuthFile);
    AuthFile& auth = *file;
    std::istringstream lines(read_safely(path));
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
        number++;
        if (line.empty() || line[0] == '#')
            continue;
        std::vector<std::string> parts;
        std::size_t start = 0;
        for (std::size_t colon; (colon = line.find(':', start)) != std::string::npos; start = colon + 1)
            parts.push_back(line.substr(start, colon - start));
        parts.push_back(line.substr(start));
        PasswordHash h;
        bool ok = parts.size() == 5 && !parts[0].empty() && parts[1] == "pbkdf2-sha256" &&
                  parts[2].find_first_not_of("0123456789") == std::string::npos &&
                  !parts[2].empty() && parts[2].size() < 9 && from_hex(parts[3], h.salt) &&
                  h.salt.size() >= 8 && from_hex(parts[4], h.hash) && h.hash.size() == 32;
        if (ok)
            h.iterations = static_cast<unsigned>(std::stoul(parts[2]));
        if (!ok || h.iterations < kMinIterations)
            refuse(path, "line " + std::to_string(number) +
                             " is not name:pbkdf2-sha256:ITERATIONS(>=10000):SALT_HEX:HASH_HEX "
                             "(warden dashboard --hash-password NAME prints one)");
        auth.users_[parts[0]] = h;
    }
    if (auth.users_.empty())
        refuse(path, "has no user");
    auth.cache_key_ = random_bytes(32);
    return file;
}

bool AuthFile::check_header(const std::string& header) const
{
    const std::string prefix = "Basic ";
    std::string decoded;
    if (header.compare(0, prefix.size(), prefix) != 0 ||
        !base64_decode(header.substr(prefix.size()), decoded))
        return false;
    std::size_t colon = decoded.find(':');
    if (colon == std::string::npos)
        return false;
    std::string user = decoded.substr(0, colon), password = decoded.substr(colon + 1);

    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), cache_key_.data(), static_cast<int>(cache_key_.size()),
         reinterpret_cast<const unsigned char*>(decoded.data()), decoded.size(), mac, &mac_len);
    std::string tag(reinterpret_cast<char*>(mac), mac_len);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (verified_.count(tag))
            return true;
    }

    auto it = users_.find(user);
    // An unknown user costs the same PBKDF2 run as a known one: no timing tells them apart.
    static const PasswordHash dummy{200000, std::string(16, 's'), std::string(32, '\0')};
    const PasswordHash& h = it == users_.end() ? dummy : it->second;
    std::string computed = pbkdf2(password, h.salt, h.iterations);
    bool match = CRYPTO_memcmp(computed.data(), h.hash.data(), 32) == 0 && it != users_.end();
    if (match) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (verified_.size() < 1024)
            verified_.insert(tag);
    }
    return match;
}

std::string hash_password_line(const std::string& user, const std::string& password,
                               unsigned iterations)
{
    if (user.empty() || user.find(':') != std::string::npos || user.find('\n') != std::string::npos)
        throw Error("22023", "a user name is not empty and has no ':' or line break");
    std::string salt = random_bytes(16);
    return user + ":pbkdf2-sha256:" + std::to_string(iterations) + ":" + to_hex(salt) + ":" +
           to_hex(pbkdf2(password, salt, iterations));
}

}  // namespace warden::dashboard
