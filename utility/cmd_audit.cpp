// `warden audit verify` and `warden audit head`: the audit trail's seals from outside the
// database. verify recomputes every seal (warden.verify_audit) and names the first slice
// where a row was deleted, inserted or changed, or whose partition was dropped by hand;
// head prints the newest seal of each chain, for an auditor to keep (and compare later:
// a chain rewritten from an old seal on no longer ends in the head they kept).
// Exit codes: 0 verified, 1 a problem found, 2 bad usage, 3 could not verify.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "commands.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "json_text.hpp"

namespace warden::cli {

namespace {

struct AuditOptions {
    ConnectionOptions conn;
    bool json = false;
    std::string from;
};

[[noreturn]] void usage_error(const std::string& command, const std::string& why)
{
    std::fprintf(stderr, "warden: audit %s: %s\n", command.c_str(), why.c_str());
    throw ExitCode{2};
}

// One line: libpq's messages span lines.
int cannot_verify(const std::string& command, const std::string& reason)
{
    std::string line;
    for (char c : reason)
        line += (c == '\n' || c == '\t') ? ' ' : c;
    while (!line.empty() && line.back() == ' ')
        line.pop_back();
    std::fprintf(stderr, "warden: audit %s: %s\n", command.c_str(), line.c_str());
    return 3;
}

std::string explain(const Error& e)
{
    std::string what = e.what();
    if (e.sqlstate() == "3F000" || (e.sqlstate() == "42883" && what.find("warden.") != std::string::npos))
        return "pg_warden 1.2 is not installed in this database (CREATE EXTENSION pg_warden, or "
               "ALTER EXTENSION pg_warden UPDATE)";
    if (e.sqlstate() == "42501")
        return what + " (grant warden_admin to this role)";
    return what;
}

// Timestamps print in UTC, and --from is read in UTC unless it names its zone.
std::unique_ptr<Connection> connect(const AuditOptions& opts, const char* name)
{
    auto conn = std::make_unique<Connection>(opts.conn.conninfo, false, name);
    conn->exec("SET TimeZone = 'UTC'");
    return conn;
}

nlohmann::json field(PGresult* res, int row, int col, bool number = false)
{
    if (PQgetisnull(res, row, col))
        return nullptr;
    std::string v = PQgetvalue(res, row, col);
    if (number)
        return std::stoll(v);
    if (v == "t" || v == "f")
        return v == "t";
    return v;
}

int run_verify(const AuditOptions& opts)
{
    static const std::regex date_re(
        R"(^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$)");
    if (!opts.from.empty() && !std::regex_match(opts.from, date_re))
        usage_error("verify", "--from takes a date (YYYY-MM-DD) or a timestamp (YYYY-MM-DD HH:MM[:SS]), "
                              "not '" + opts.from + "'");
    nlohmann::json chains = nlohmann::json::array();
    try {
        auto conn = connect(opts, "warden audit verify");
        std::vector<std::string> params{opts.from.empty() ? std::string() : opts.from};
        auto res = conn->exec_params(
            "SELECT chain, ok, seals, rows_checked, sealed_through, first_bad_seq, slice_start, slice_end, "
            "problem, detail, problems FROM warden.verify_audit(NULLIF($1, '')::timestamptz)",
            params);
        for (int i = 0; i < PQntuples(res.get()); i++) {
            PGresult* r = res.get();
            chains.push_back({{"chain", field(r, i, 0)}, {"ok", field(r, i, 1)},
                              {"seals", field(r, i, 2, true)}, {"rows_checked", field(r, i, 3, true)},
                              {"sealed_through", field(r, i, 4)}, {"first_bad_seal", field(r, i, 5, true)},
                              {"slice_start", field(r, i, 6)}, {"slice_end", field(r, i, 7)},
                              {"problem", field(r, i, 8)}, {"detail", field(r, i, 9)},
                              {"problems", field(r, i, 10, true)}});
        }
    } catch (const Error& e) {
        return cannot_verify("verify", explain(e));
    }
    bool ok = true;
    for (const auto& c : chains)
        ok = ok && c["ok"] == true;
    if (opts.json) {
        nlohmann::json from = opts.from.empty() ? nlohmann::json() : nlohmann::json(opts.from);
        fmt::print("{}\n", json_text({{"ok", ok}, {"from", from}, {"chains", chains}}));
    } else {
        for (const auto& c : chains) {
            std::string through = c["sealed_through"].is_string() ? c["sealed_through"].get<std::string>()
                                                                   : "(nothing sealed yet)";
            if (c["ok"] == true) {
                fmt::print("{}: ok, {} seal(s), {} row(s), sealed through {}\n", c["chain"].get<std::string>(),
                           c["seals"].get<long long>(), c["rows_checked"].get<long long>(), through);
                continue;
            }
            std::string where = c["slice_end"].is_string()
                                    ? fmt::format("[{}, {})",
                                                  c["slice_start"].is_string() ? c["slice_start"].get<std::string>()
                                                                               : "-infinity",
                                                  c["slice_end"].get<std::string>())
                                    : "";
            fmt::print("{}: FAILED at seal {} {}: {}: {} ({} problem(s) in all)\n", c["chain"].get<std::string>(),
                       c["first_bad_seal"].get<long long>(), where, c["problem"].get<std::string>(),
                       c["detail"].is_string() ? c["detail"].get<std::string>() : "",
                       c["problems"].get<long long>());
        }
    }
    std::fflush(stdout);
    return ok ? 0 : 1;
}

int run_head(const AuditOptions& opts)
{
    nlohmann::json heads = nlohmann::json::array();
    try {
        auto conn = connect(opts, "warden audit head");
        auto res = conn->exec(
            "SELECT chain, seq, slice_start, slice_end, row_count, seal, sealed_at FROM warden.audit_head()");
        PGresult* r = res.get();
        for (int i = 0; i < PQntuples(r); i++)
            heads.push_back({{"chain", field(r, i, 0)}, {"seq", field(r, i, 1, true)},
                             {"slice_start", field(r, i, 2)}, {"slice_end", field(r, i, 3)},
                             {"row_count", field(r, i, 4, true)}, {"seal", field(r, i, 5)},
                             {"sealed_at", field(r, i, 6)}});
    } catch (const Error& e) {
        return cannot_verify("head", explain(e));
    }
    if (opts.json) {
        fmt::print("{}\n", json_text(heads));
    } else if (heads.empty()) {
        fmt::print("no seal yet\n");
    } else {
        for (const auto& h : heads)
            fmt::print("{} seal {} through {} sha256:{} (sealed {})\n", h["chain"].get<std::string>(),
                       h["seq"].get<long long>(), h["slice_end"].get<std::string>(),
                       h["seal"].get<std::string>(), h["sealed_at"].get<std::string>());
    }
    std::fflush(stdout);
    return 0;
}

void add_audit_commands(CLI::App& app)
{
    CLI::App* audit = app.add_subcommand("audit", "the audit trail's seals: verify them, print the newest");
    audit->require_subcommand(1);

    auto verify_opts = std::make_shared<AuditOptions>();
    CLI::App* verify = audit->add_subcommand(
        "verify", "recompute the seals and name the first slice where rows were deleted, inserted or "
                  "changed; exit 0 verified, 1 a problem found, 3 could not verify");
    add_connection_option(verify, verify_opts->conn);
    verify->add_option("--from", verify_opts->from,
                       "check only the seals ending after this date or timestamp (UTC unless it names a zone)");
    verify->add_flag("--json", verify_opts->json, "print the result as JSON");
    on_run(verify, [verify_opts] { return run_verify(*verify_opts); });

    auto head_opts = std::make_shared<AuditOptions>();
    CLI::App* head = audit->add_subcommand(
        "head", "print the newest seal of each chain, to keep outside the database");
    add_connection_option(head, head_opts->conn);
    head->add_flag("--json", head_opts->json, "print the seals as JSON");
    on_run(head, [head_opts] { return run_head(*head_opts); });
}

}  // namespace

static const bool registered = add_command_group(40, add_audit_commands);

}  // namespace warden::cli
