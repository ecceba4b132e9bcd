#include "connection.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <regex>
#include <set>

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

constexpr const char* kMask = "********";

// The keywords libpq marks secret (dispchar '*'): password and sslpassword today.
const std::set<std::string>& secret_keywords()
{
    static const std::set<std::string> keys = [] {
        std::set<std::string> out = {"password", "sslpassword"};
        std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> d(PQconndefaults(), PQconninfoFree);
        for (PQconninfoOption* o = d.get(); d && o->keyword; ++o)
            if (o->dispchar && std::strchr(o->dispchar, '*'))
                out.insert(o->keyword);
        return out;
    }();
    return keys;
}

std::string percent_decode(const std::string& s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The secret values written in a conninfo string or URI, found the way libpq reads them
// but without libpq, which may just have refused the string: the password of a URI's
// user info, and secret keywords in its query or in key=value form; raw and decoded.
std::vector<std::string> secret_values(const std::string& conninfo)
{
    std::vector<std::string> out;
    auto add = [&](const std::string& v) {
        if (!v.empty()) {
            out.push_back(v);
            out.push_back(percent_decode(v));
        }
    };
    for (const char* scheme : {"postgresql://", "postgres://"}) {
        if (conninfo.rfind(scheme, 0) != 0)
            continue;
        std::size_t start = std::strlen(scheme);
        std::size_t end = conninfo.find_first_of("@/", start);
        if (end != std::string::npos && conninfo[end] == '@') {
            std::size_t colon = conninfo.find(':', start);
            if (colon < end)
                add(conninfo.substr(colon + 1, end - colon - 1));
        }
        std::size_t q = conninfo.find('?');
        while (q != std::string::npos) {
            std::size_t amp = conninfo.find('&', q + 1);
            std::string pair = conninfo.substr(q + 1, amp == std::string::npos ? std::string::npos : amp - q - 1);
            std::size_t eq = pair.find('=');
            if (eq != std::string::npos && secret_keywords().count(percent_decode(pair.substr(0, eq))))
                add(pair.substr(eq + 1));
            q = amp;
        }
        return out;
    }
    // key = value, value unquoted up to a blank or quoted with '...' and backslash escapes.
    for (std::size_t i = 0; i < conninfo.size();) {
        while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i])))
            ++i;
        std::size_t k = i;
        while (i < conninfo.size() && conninfo[i] != '=' && !std::isspace(static_cast<unsigned char>(conninfo[i])))
            ++i;
        std::string key = conninfo.substr(k, i - k);
        while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i])))
            ++i;
        if (i >= conninfo.size() || conninfo[i] != '=') {
            if (i == k)
                ++i;
            continue;
        }
        ++i;
        while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i])))
            ++i;
        std::string raw, value;
        if (i < conninfo.size() && conninfo[i] == '\'') {
            std::size_t v = i++;
            while (i < conninfo.size() && conninfo[i] != '\'') {
                if (conninfo[i] == '\\' && i + 1 < conninfo.size())
                    ++i;
                value += conninfo[i++];
            }
            raw = conninfo.substr(v + 1, i - v - 1);
            ++i;
        } else {
            std::size_t v = i;
            while (i < conninfo.size() && !std::isspace(static_cast<unsigned char>(conninfo[i])))
                ++i;
            raw = value = conninfo.substr(v, i - v);
        }
        if (secret_keywords().count(key)) {
            add(raw);
            add(value);
        }
    }
    return out;
}

std::string replace_all(std::string s, const std::string& what, const std::string& with)
{
    for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
        s.replace(pos, what.size(), with);
    return s;
}
}  // namespace

std::string trim_message(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

std::string mask_secrets(const std::string& message, const std::string& conninfo)
{
    std::string out = message;
    auto secrets = secret_values(conninfo);
    // Longest first, so a secret that contains another is masked whole.
    std::sort(secrets.begin(), secrets.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& secret : secrets)
        out = replace_all(out, secret, kMask);
    // And whatever looks like a secret in the message itself (a URI's user:password@, a
    // password=... pair), whichever string it came from.
    static const std::regex uri_password(R"((://[^:/@\s"]*:)[^@\s"]+@)");
    static const std::regex keyword_value(R"(\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&"]+))");
    out = std::regex_replace(out, uri_password, std::string("$1") + kMask + "@");
    out = std::regex_replace(out, keyword_value, std::string("$1") + kMask);
    return out;
}

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
                                 mask_secrets(trim_message(PQerrorMessage(conn_.get())), effective));
}

void throw_result_error(const PGresult* res, PGconn* conn)
{
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const char* detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr;
    const char* hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : nullptr;
    std::string message = primary ? primary : trim_message(PQerrorMessage(conn));
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
