// warden: the command-line companion of the pg_warden extension.
//
// Subcommands in the style of git (`warden migrate up`, `warden backup create`), each with
// --help and --json. Exit codes: 0 success, 1 failure with a one-line reason on stderr,
// 2 bad usage; `warden health` uses the check_postgres codes 0/1/2/3.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "error.hpp"
#include "version.hpp"

int main(int argc, char** argv)
{
    CLI::App app{"warden: migrations, backups and health for PostgreSQL with pg_warden"};
    app.set_version_flag("--version", fmt::format("warden {}", warden::kVersion));
    app.require_subcommand(1);

    warden::cli::register_commands(app);

    try {
        app.parse(argc, argv);
        return warden::cli::run_selected(app);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; every usage error exits 2, as documented.
        return app.exit(e) == 0 ? 0 : 2;
    } catch (const warden::cli::ExitCode& e) {
        return e.code;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "warden: %s\n", e.what());
        return 1;
    }
}
