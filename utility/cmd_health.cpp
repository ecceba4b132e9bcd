// `warden health`: one look at a database through pg_warden's health checks, for people
// (a coloured report), scripts (--json) and Prometheus (--prometheus). The exit code is
// check_postgres's: 0 ok, 1 warning, 2 critical, 3 unknown, also when the server cannot
// be reached or the report cannot be read, so that a Nagios-style runner can use it as is.
// --html FILE also writes the dashboard's overview and charts as one self-contained page.
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "commands.hpp"
#include "connection.hpp"
#include "dashboard/report_file.hpp"
#include "error.hpp"
#include "health.hpp"
#include "json_text.hpp"

namespace warden::cli {

namespace {

using Clock = std::chrono::steady_clock;
using health::Status;

struct HealthOptions {
    ConnectionOptions conn;
    bool json = false;
    bool prometheus = false;
    bool no_color = false;
    int timeout = 10;
    std::string html;
};

double ms_since(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

const char* colour_of(Status s)
{
    switch (s) {
    case Status::ok: return "\033[32m";
    case Status::warning: return "\033[33m";
    case Status::critical: return "\033[1;31m";
    case Status::unknown: break;
    }
    return "\033[35m";
}

std::string status_word(Status s, bool colour, bool dim = false, bool pad = true)
{
    std::string word = pad ? fmt::format("{:<8}", health::status_name(s)) : health::status_name(s);
    if (!colour)
        return word;
    return fmt::format("{}{}\033[0m", dim ? "\033[2m" : colour_of(s), word);
}

// Byte-valued checks are shown as sizes; a unit like "bytes per hour" keeps its tail.
std::string number_field(const nlohmann::json& v, const std::string& unit, bool with_unit)
{
    if (!v.is_number())
        return "-";
    double d = v.get<double>();
    if (unit.rfind("bytes", 0) == 0)
        return health::human_bytes(d) + (with_unit ? unit.substr(5) : "");
    return health::human_number(d) + (with_unit && !unit.empty() ? " " + unit : "");
}

// A one-line reason on stderr and exit 3: the state of the database is unknown.
int unknown(const std::string& reason)
{
    // libpq's messages span lines ("...failed: ...\n\tIs the server running...").
    std::string line;
    for (char c : reason) {
        if (c == '\n' || c == '\t') {
            if (!line.empty() && line.back() != ' ')
                line += line.back() == ':' ? " " : "; ";
            continue;
        }
        line += c;
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == ';'))
        line.pop_back();
    std::fprintf(stderr, "warden: health unknown: %s\n", line.c_str());
    return 3;
}

void print_text(const nlohmann::json& report, double connect_ms, double report_ms, bool colour)
{
    Status overall = health::parse_status(report.value("status", ""));
    std::string bold = colour ? "\033[1m" : "", reset = colour ? "\033[0m" : "";
    fmt::print("{}pg_warden health{}: {} database {} on PostgreSQL {}{}, response {:.0f} ms "
               "(connect {:.0f} ms, report {:.0f} ms)\n",
               bold, reset, status_word(overall, colour), report.value("database", "?"),
               report.value("server_version", "?"),
               report.value("in_recovery", false) ? " (standby)" : "", connect_ms + report_ms,
               connect_ms, report_ms);
    std::string category;
    for (const auto& c : report.value("checks", nlohmann::json::array())) {
        if (c.value("category", "") != category) {
            category = c.value("category", "");
            fmt::print("\n{}{}{}\n", bold, category, reset);
        }
        Status s = health::parse_status(c.value("status", ""));
        bool applicable = c.value("applicable", true);
        std::string unit = c.value("unit", "");
        std::string value = number_field(c["value"], unit, true);
        std::string limits;
        if (c["warning"].is_number() || c["critical"].is_number())
            limits = fmt::format("warn {} / crit {}", number_field(c["warning"], unit, false),
                                 number_field(c["critical"], unit, false));
        fmt::print("  {} {:<24} {:>22}  {:<30} {}\n", status_word(s, colour, !applicable),
                   c.value("check", "?"), value, limits,
                   c["detail"].is_string() ? c["detail"].get<std::string>() : "");
    }
    const auto& sum = report["summary"];
    fmt::print("\nsummary: {} ok, {} warning, {} critical, {} unknown; overall {}\n",
               sum.value("ok", 0), sum.value("warning", 0), sum.value("critical", 0),
               sum.value("unknown", 0), status_word(overall, colour, false, false));
}

int run_health(const HealthOptions& opts)
{
    // libpq's own default for connect_timeout; an explicit one in -d still wins.
    std::string timeout = std::to_string(opts.timeout);
    setenv("PGCONNECT_TIMEOUT", timeout.c_str(), 0);

    auto start = Clock::now();
    std::unique_ptr<Connection> conn;
    try {
        conn = std::make_unique<Connection>(opts.conn.conninfo, false, "warden health");
    } catch (const std::exception& e) {
        return unknown(e.what());
    }
    double connect_ms = ms_since(start);

    nlohmann::json report;
    std::string metrics;
    double report_ms = 0;
    try {
        conn->exec(fmt::format("SET statement_timeout = '{}s'", opts.timeout));
        auto query_start = Clock::now();
        // The report includes the custom checks (warden.add_check): they count like
        // built-in ones, exit code included.
        auto res = conn->exec("SELECT warden.health_report()::text");
        report_ms = ms_since(query_start);
        report = nlohmann::json::parse(PQgetvalue(res.get(), 0, 0));
        if (opts.prometheus)
            metrics = PQgetvalue(conn->exec("SELECT warden.metrics()").get(), 0, 0);
        if (!opts.html.empty())
            dashboard::write_html_report(*conn, opts.html);
    } catch (const Error& e) {
        if (e.sqlstate() == "3F000" || e.sqlstate() == "42883")
            return unknown("pg_warden is not installed in this database (CREATE EXTENSION "
                           "pg_warden), or this role lacks warden_monitor");
        if (e.sqlstate() == "42501")
            return unknown(std::string(e.what()) + " (grant warden_monitor to this role)");
        return unknown(e.what());
    } catch (const nlohmann::json::exception& e) {
        return unknown(std::string("unreadable health report: ") + e.what());
    }

    Status overall = health::parse_status(report.value("status", ""));
    if (opts.json) {
        report["response_ms"] = {{"connect", connect_ms}, {"report", report_ms},
                                 {"total", connect_ms + report_ms}};
        fmt::print("{}\n", json_text(report));
    } else if (opts.prometheus) {
        fmt::print("{}", metrics);
        fmt::print("# HELP warden_health_response_seconds Time warden health took to connect "
                   "and to run the health report.\n"
                   "# TYPE warden_health_response_seconds gauge\n"
                   "warden_health_response_seconds{{phase=\"connect\"}} {:.6f}\n"
                   "warden_health_response_seconds{{phase=\"report\"}} {:.6f}\n",
                   connect_ms / 1000, report_ms / 1000);
    } else {
        bool colour = !opts.no_color && isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
        print_text(report, connect_ms, report_ms, colour);
    }
    std::fflush(stdout);
    return health::exit_code(overall);
}

void add_health_commands(CLI::App& app)
{
    auto opts = std::make_shared<HealthOptions>();
    CLI::App* cmd = app.add_subcommand(
        "health", "check the database's health; exit 0 ok, 1 warning, 2 critical, 3 unknown");
    add_connection_option(cmd, opts->conn);
    auto* json = cmd->add_flag("--json", opts->json, "print the whole report as JSON");
    auto* prom = cmd->add_flag("--prometheus", opts->prometheus,
                               "print Prometheus text exposition format");
    json->excludes(prom);
    cmd->add_flag("--no-color", opts->no_color, "no colours, even on a terminal");
    cmd->add_option("--html", opts->html,
                    "also write the overview and charts to this file, as one self-contained page");
    cmd->add_option("--timeout", opts->timeout, "seconds to wait for the connection and the report")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    on_run(cmd, [opts] { return run_health(*opts); });
}

}  // namespace

static const bool registered = add_command_group(80, add_health_commands);

}  // namespace warden::cli
