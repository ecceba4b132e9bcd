#include "backup_key.hpp"

#include <cstdlib>
#include <optional>

#include "encryption.hpp"
#include "error.hpp"
#include "fs/safe_file.hpp"

namespace warden {

namespace {
constexpr const char* kPassphraseVariable = "WARDEN_BACKUP_PASSPHRASE";
std::optional<std::string> g_secret;
bool g_encrypting = false;
}  // namespace

void load_backup_secret(const std::string& key_file)
{
    std::string secret;
    if (!key_file.empty()) {
        std::size_t slash = key_file.rfind('/');
        fs::Dir dir = fs::Dir::open(slash == std::string::npos ? "." : key_file.substr(0, slash == 0 ? 1 : slash));
        std::optional<std::string> text =
            fs::read_small_file(dir, key_file.substr(slash == std::string::npos ? 0 : slash + 1), 4096);
        if (!text)
            throw Error(sqlstate::invalid_parameter_value, "--key-file " + key_file + ": no such file");
        secret = *text;
        if (!secret.empty() && secret.back() == '\n')
            secret.pop_back();
        if (secret.empty())
            throw Error(sqlstate::invalid_parameter_value, "--key-file " + key_file + " is empty");
    } else {
        const char* env = std::getenv(kPassphraseVariable);
        if (!env || !*env)
            throw Error(sqlstate::invalid_parameter_value,
                        std::string("no key: give --key-file FILE or set ") + kPassphraseVariable);
        secret = env;
    }
    g_secret = secret;
}

void load_backup_secret_if_any(const std::string& key_file)
{
    const char* env = std::getenv(kPassphraseVariable);
    if (!key_file.empty() || (env && *env))
        load_backup_secret(key_file);
}

const std::string* backup_secret() { return g_secret ? &*g_secret : nullptr; }

void start_encrypting(BackupInfo& info)
{
    if (!g_secret)
        throw Error(sqlstate::invalid_parameter_value,
                    std::string("--encrypt needs a key: --key-file FILE or ") + kPassphraseVariable);
    info.encryption_salt = random_hex(16);
    info.encryption_key_check = key_check(*g_secret, info.encryption_salt);
    g_encrypting = true;
}

bool encrypting() { return g_encrypting; }

void require_backup_key(const BackupInfo& info)
{
    if (info.encryption_salt.empty())
        return;
    if (!g_secret)
        throw Error(sqlstate::invalid_parameter_value,
                    "backup " + info.id + " is encrypted: give --key-file FILE or set " + kPassphraseVariable);
    if (key_check(*g_secret, info.encryption_salt) != info.encryption_key_check)
        throw Error(sqlstate::invalid_parameter_value,
                    "wrong key for backup " + info.id + ": it was encrypted with another key or passphrase");
}

}  // namespace warden
