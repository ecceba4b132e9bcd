#include "connection.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <cstring>

#include "error.hpp"

namespace warden {

namespace {
std::string effective_conninfo(const std::string& conninfo)
{
    if (!conninfo.empty())
        return conninfo;
    if (const char* url = std::getenv("DATABASE_URL"); url && *url)
        return url;
    return "";
}

std::string trim_trailing_newlines(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}
}  // namespace

Connection::Connection(const std::string& conninfo, bool replication,
                       const std::string& application_name)
{
    // Expanded keywords: the user's string is parsed as conninfo or URI by libpq itself
    // (expand_dbname), then our keywords apply only where the user set nothing.
    std::vector<const char*> keys = {"dbname", "fallback_application_name"};
    std::string effective = effective_conninfo(conninfo);
    std::vector<const char*> vals = {effective.c_str(), application_name.c_str()};
    if (replication) {
        keys.push_back("replication");
        vals.push_back("true");
    }
    keys.push_back(nullptr);
    vals.push_back(nullptr);
    conn_.reset(PQconnectdbParams(keys.data(), vals.data(), 1));
    if (!conn_)
        throw Error(sqlstate::out_of_memory, "out of memory while connecting");
    if (PQstatus(conn_.get()) != CONNECTION_OK)
        throw Error("08001", "could not connect: " +
                                 trim_trailing_newlines(PQerrorMessage(conn_.get())));
}

void throw_result_error(const PGresult* res, PGconn* conn)
{
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const char* detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr;
    const char* hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : nullptr;
    std::string message = primary ? primary : trim_trailing_newlines(PQerrorMessage(conn));
    throw Error(state ? state : "08006", message, detail ? detail : "", hint ? hint : "");
}

static ResultPtr checked(PGresult* raw, PGconn* conn)
{
    ResultPtr res(raw);
    auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_COPY_OUT &&
        status != PGRES_COPY_IN && status != PGRES_COPY_BOTH)
        throw_result_error(res.get(), conn);
    return res;
}

ResultPtr Connection::exec(const std::string& sql)
{
    return checked(PQexec(conn_.get(), sql.c_str()), conn_.get());
}

ResultPtr Connection::exec_params(const std::string& sql, const std::vector<std::string>& params)
{
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
        values.push_back(p.c_str());
    return checked(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()),
                                nullptr, values.data(), nullptr, nullptr, 0),
                   conn_.get());
}

}  // namespace warden
