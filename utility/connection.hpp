// A libpq connection owned by C++: connects the way every libpq client does.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <vector>

namespace warden {

struct PGconnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct PGresultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, PGresultDeleter>;

class Connection {
public:
    // conninfo: a conninfo string or URI; empty means $DATABASE_URL if set, otherwise
    // libpq's defaults (PG* variables, .pgpass, service file). Throws warden::Error with
    // libpq's reason on failure. replication=true opens a physical replication connection.
    explicit Connection(const std::string& conninfo, bool replication = false,
                        const std::string& application_name = "warden");

    PGconn* get() const { return conn_.get(); }

    // Runs a command; throws warden::Error (with the server's SQLSTATE) unless it succeeds.
    ResultPtr exec(const std::string& sql);
    ResultPtr exec_params(const std::string& sql, const std::vector<std::string>& params);

private:
    std::unique_ptr<PGconn, PGconnDeleter> conn_;
};

// `message` with every secret of `conninfo` replaced by ******** (password, sslpassword:
// the keywords libpq marks secret), also when libpq refused the string and echoed it
// back, as it does for an invalid URI. Every message that may quote a conninfo goes
// through here before it is printed.
std::string mask_secrets(const std::string& message, const std::string& conninfo);

// libpq's messages end in a newline; ours do not.
std::string trim_message(std::string s);

// Throws warden::Error built from a failed result (SQLSTATE, message, detail, hint).
[[noreturn]] void throw_result_error(const PGresult* res, PGconn* conn);

}  // namespace warden
