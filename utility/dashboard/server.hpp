// `warden dashboard`: a read-only web server over one libpq connection.
#pragma once

#include <memory>
#include <string>

#include "dashboard/auth.hpp"

namespace warden::dashboard {

struct ListenAddress {
    std::string host;  // as given, without IPv6 brackets
    int port = 0;
};

// "127.0.0.1:8080", "[::1]:8080", "localhost:8080". Throws warden::Error (22023).
ListenAddress parse_listen(const std::string& text);

// 127.0.0.0/8, ::1 and "localhost": addresses only this machine can reach.
bool is_loopback(const std::string& host);

struct ServerOptions {
    ListenAddress listen;
    std::string conninfo;
    std::shared_ptr<AuthFile> auth;  // null: no authentication (loopback only)
    std::string tls_cert, tls_key;   // both empty: plain HTTP
    std::string chartjs;             // the Chart.js source served at /static/chart.min.js
};

// Connects, checks the role, listens and serves until SIGINT or SIGTERM. Returns the exit
// code; a one-line reason on stderr when it cannot start.
int serve(const ServerOptions& opts);

}  // namespace warden::dashboard
