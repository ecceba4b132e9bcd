// `warden dashboard`: pg_warden's health as web pages, PgHero style, one question per page,
// read-only, from one connection of a warden_monitor member. It listens on loopback unless
// told otherwise; any other address needs an auth file and TLS, since the pages show the
// server's activity, tables and security events.
#include <fmt/core.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "dashboard/auth.hpp"
#include "dashboard/render.hpp"
#include "dashboard/server.hpp"
#include "error.hpp"

namespace warden::cli {

namespace {

struct DashboardOptions {
    ConnectionOptions conn;
    std::string listen = "127.0.0.1:8080";
    std::string auth_file;
    std::string tls_cert, tls_key;
    std::string hash_password_user;
};

[[noreturn]] void usage_error(const std::string& why)
{
    std::fprintf(stderr, "warden: dashboard: %s\n", why.c_str());
    throw ExitCode{2};
}

// The password comes from stdin (never argv); not echoed on a terminal.
int print_hash_line(const std::string& user)
{
    bool tty = isatty(STDIN_FILENO);
    termios saved{};
    if (tty) {
        std::fprintf(stderr, "password for %s: ", user.c_str());
        tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string password;
    std::getline(std::cin, password);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        std::fprintf(stderr, "\n");
    }
    if (password.empty())
        usage_error("an empty password is not accepted");
    fmt::print("{}\n", dashboard::hash_password_line(user, password));
    return 0;
}

int run_dashboard(const DashboardOptions& opts)
{
    if (!opts.hash_password_user.empty())
        return print_hash_line(opts.hash_password_user);

    dashboard::ServerOptions server;
    try {
        server.listen = dashboard::parse_listen(opts.listen);
    } catch (const Error& e) {
        usage_error(e.what());
    }
    if (opts.tls_cert.empty() != opts.tls_key.empty())
        usage_error("--tls-cert and --tls-key go together");
    if (!dashboard::is_loopback(server.listen.host) &&
        (opts.auth_file.empty() || opts.tls_cert.empty()))
        usage_error("refusing to listen on " + server.listen.host +
                    ", which is not loopback, without --auth-file and --tls-cert/--tls-key");
    if (!opts.auth_file.empty()) {
        try {
            server.auth = dashboard::AuthFile::load(opts.auth_file);
        } catch (const Error& e) {
            usage_error(e.what());
        }
    }
    server.conninfo = opts.conn.conninfo;
    server.tls_cert = opts.tls_cert;
    server.tls_key = opts.tls_key;
    server.chartjs = dashboard::load_chartjs();
    return dashboard::serve(server);
}

void add_dashboard_commands(CLI::App& app)
{
    auto opts = std::make_shared<DashboardOptions>();
    CLI::App* cmd = app.add_subcommand(
        "dashboard", "serve read-only health pages and charts over HTTP (loopback by default)");
    add_connection_option(cmd, opts->conn);
    cmd->add_option("--listen", opts->listen,
                    "HOST:PORT to listen on; other than loopback needs --auth-file and TLS")
        ->capture_default_str();
    cmd->add_option("--auth-file", opts->auth_file,
                    "require basic auth against this file (mode 0600, lines from --hash-password)");
    cmd->add_option("--tls-cert", opts->tls_cert, "PEM certificate: serve HTTPS");
    cmd->add_option("--tls-key", opts->tls_key, "PEM private key of --tls-cert");
    cmd->add_option("--hash-password", opts->hash_password_user,
                    "print an auth file line for this user, the password read from stdin");
    on_run(cmd, [opts] { return run_dashboard(*opts); });
}

}  // namespace

static const bool registered = add_command_group(85, add_dashboard_commands);

}  // namespace warden::cli
