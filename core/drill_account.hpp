// Which OS account the scratch server of a physical drill runs as. PostgreSQL refuses to
// start as root, and `warden backup drill` often runs from root's crontab: then the server
// runs as --os-user, else as the owner of the backup folder, else as `postgres`, as the
// packaged clusters and the test harness do. Pure, so the rule is unit-tested without root.
#pragma once

#include <cstdint>
#include <string>

namespace warden::drill {

struct ServerAccount {
    enum class Kind {
        current,  // not root: the server runs as warden runs
        named,    // the account called `name`
        uid,      // the account with uid `uid` (the backup folder's owner)
    };
    Kind kind = Kind::current;
    std::string name;
    std::uint32_t uid = 0;
    std::string why;  // for messages: where the choice came from
};

// euid: warden's effective uid; os_user: --os-user ("" when absent); backup_owner: the uid
// that owns the backup folder. Without root, --os-user may only name warden's own account
// (the caller checks once the name is resolved).
ServerAccount choose_server_account(std::uint32_t euid, const std::string& os_user,
                                    std::uint32_t backup_owner);

}  // namespace warden::drill
