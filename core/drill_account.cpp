#include "drill_account.hpp"

namespace warden::drill {

ServerAccount choose_server_account(std::uint32_t euid, const std::string& os_user,
                                    std::uint32_t backup_owner)
{
    ServerAccount a;
    if (!os_user.empty()) {
        a.kind = ServerAccount::Kind::named;
        a.name = os_user;
        a.why = "--os-user";
        return a;
    }
    if (euid != 0)
        return a;
    if (backup_owner != 0) {
        a.kind = ServerAccount::Kind::uid;
        a.uid = backup_owner;
        a.why = "the owner of the backup folder";
        return a;
    }
    a.kind = ServerAccount::Kind::named;
    a.name = "postgres";
    a.why = "the backup folder belongs to root, so the default account";
    return a;
}

}  // namespace warden::drill
