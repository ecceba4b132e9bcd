#include "dashboard/server.hpp"

#include <arpa/inet.h>
#include <fmt/core.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <signal.h>

#include <cstdio>
#include <mutex>
#include <thread>

#include "connection.hpp"
#include "dashboard/pages.hpp"
#include "dashboard/render.hpp"
#include "error.hpp"

namespace warden::dashboard {

namespace {

// Read-only by the session's defaults as well as by the role's rights, and bounded in time.
// With only pg_catalog on the path, every relation name shown carries its schema.
void prepare_session(Connection& conn)
{
    conn.exec("SET default_transaction_read_only = on");
    conn.exec("SET search_path = pg_catalog, pg_temp");
    conn.exec("SET statement_timeout = '30s'");
}

// The one database connection, shared by the server's threads one request at a time.
class Database {
public:
    explicit Database(const std::string& conninfo)
        : conn_(conninfo, false, "warden dashboard")
    {
        prepare_session(conn_);
    }

    std::string page(const std::string& id, const std::string& range)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (PQstatus(conn_.get()) != CONNECTION_OK) {
            PQreset(conn_.get());
            if (PQstatus(conn_.get()) != CONNECTION_OK)
                throw Error("08006", "the database connection is lost and could not be reopened");
            prepare_session(conn_);
        }
        return render_page(page_data(conn_, id, range), false);
    }

    Connection& connection() { return conn_; }

private:
    std::mutex mutex_;
    Connection conn_;
};

void set_security_headers(httplib::Server& svr)
{
    svr.set_default_headers({
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-store"},
    });
}

}  // namespace

ListenAddress parse_listen(const std::string& text)
{
    ListenAddress a;
    std::string port;
    if (!text.empty() && text[0] == '[') {
        auto close = text.find("]:");
        if (close == std::string::npos)
            throw Error("22023", "--listen " + text + ": expected [IPv6]:PORT");
        a.host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon)
            throw Error("22023", "--listen " + text + ": expected HOST:PORT (or [IPv6]:PORT)");
        a.host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (a.host.empty() || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
        std::stoi(port) > 65535)
        throw Error("22023", "--listen " + text + ": expected HOST:PORT with a port of 1 to 65535");
    a.port = std::stoi(port);
    return a;
}

bool is_loopback(const std::string& host)
{
    if (host == "localhost")
        return true;
    in_addr v4;
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6;
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}

int serve(const ServerOptions& opts)
{
    // Signals go to the thread that waits for them, which stops the server cleanly.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    std::unique_ptr<Database> db;
    std::string role, database;
    try {
        db = std::make_unique<Database>(opts.conninfo);
        auto res = db->connection().exec(
            "SELECT pg_catalog.pg_has_role('warden_monitor', 'USAGE'), current_user, "
            "pg_catalog.current_database(), "
            "(SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)");
        role = PQgetvalue(res.get(), 0, 1);
        database = PQgetvalue(res.get(), 0, 2);
        if (std::string(PQgetvalue(res.get(), 0, 0)) != "t")
            throw Error("42501", "role " + role + " is not a member of warden_monitor "
                                 "(GRANT warden_monitor TO " + role + ")");
        if (std::string(PQgetvalue(res.get(), 0, 3)) == "t")
            std::fprintf(stderr, "warden: dashboard: connected as superuser %s; a warden_monitor "
                                 "member is all the dashboard needs\n", role.c_str());
    } catch (const Error& e) {
        std::string why = e.what();
        if (e.sqlstate() == "42704")
            why = "pg_warden is not installed in this database (no role warden_monitor)";
        for (char& c : why)
            if (c == '\n' || c == '\t') c = ' ';
        std::fprintf(stderr, "warden: dashboard: %s\n", why.c_str());
        return 1;
    }

    std::unique_ptr<httplib::Server> svr;
    bool tls = !opts.tls_cert.empty();
    if (tls) {
        auto ssl = std::make_unique<httplib::SSLServer>(opts.tls_cert.c_str(), opts.tls_key.c_str());
        if (!ssl->is_valid()) {
            std::fprintf(stderr, "warden: dashboard: cannot use --tls-cert %s with --tls-key %s "
                                 "(unreadable, or not a matching PEM certificate and key)\n",
                         opts.tls_cert.c_str(), opts.tls_key.c_str());
            return 1;
        }
        svr = std::move(ssl);
    } else {
        svr = std::make_unique<httplib::Server>();
    }
    set_security_headers(*svr);
    // A stop waits for open keep-alive connections: keep them short.
    svr->set_keep_alive_timeout(1);

    auto auth = opts.auth;
    svr->set_pre_routing_handler([auth](const httplib::Request& req, httplib::Response& res) {
        if (req.method != "GET" && req.method != "HEAD") {
            res.status = 405;
            res.set_header("Allow", "GET, HEAD");
            res.set_content("read-only: GET only\n", "text/plain");
            return httplib::Server::HandlerResponse::Handled;
        }
        if (auth && !auth->check_header(req.get_header_value("Authorization"))) {
            res.status = 401;
            res.set_header("WWW-Authenticate", "Basic realm=\"pg_warden\", charset=\"UTF-8\"");
            res.set_content("authentication required\n", "text/plain");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    // Path and status only: no query string, no header (the Authorization header above all).
    svr->set_logger([](const httplib::Request& req, const httplib::Response& res) {
        std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });

    Database* shared = db.get();
    for (const auto& p : pages()) {
        std::string id = p.id;
        svr->Get(p.path, [shared, id](const httplib::Request& req, httplib::Response& res) {
            std::string range = req.has_param("range") ? req.get_param_value("range") : "24h";
            if (!valid_range(range)) {
                res.status = 400;
                res.set_content("range must be one of 1h, 6h, 24h, 7d\n", "text/plain");
                return;
            }
            try {
                res.set_content(shared->page(id, range), "text/html; charset=utf-8");
            } catch (const std::exception& e) {
                res.status = 503;
                res.set_content(std::string("database unavailable: ") + e.what() + "\n", "text/plain");
            }
        });
    }
    std::string chartjs = opts.chartjs;
    svr->Get("/static/chart.min.js", [chartjs](const httplib::Request&, httplib::Response& res) {
        res.set_content(chartjs, "text/javascript; charset=utf-8");
    });
    svr->Get("/static/dashboard.js", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(dashboard_js(), "text/javascript; charset=utf-8");
    });
    svr->Get("/static/dashboard.css", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(dashboard_css(), "text/css; charset=utf-8");
    });

    if (!svr->bind_to_port(opts.listen.host.c_str(), opts.listen.port)) {
        std::fprintf(stderr, "warden: dashboard: cannot listen on %s:%d (address in use or not "
                             "local)\n", opts.listen.host.c_str(), opts.listen.port);
        return 1;
    }
    httplib::Server* server = svr.get();
    std::thread stopper([server, stop_signals] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        server->stop();
    });
    std::string host = opts.listen.host.find(':') != std::string::npos ? "[" + opts.listen.host + "]"
                                                                        : opts.listen.host;
    std::printf("warden dashboard: serving database %s as %s on %s://%s:%d/%s\n",
                database.c_str(), role.c_str(), tls ? "https" : "http", host.c_str(),
                opts.listen.port, auth ? " (basic auth)" : "");
    std::fflush(stdout);
    bool ok = svr->listen_after_bind();
    // listen_after_bind returns when stop() ran; wake the waiting thread if it did not.
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    return ok ? 0 : 1;
}

}  // namespace warden::dashboard
