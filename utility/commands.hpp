// How subcommands plug into the `warden` command line.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace warden::cli {

// Thrown to leave with a specific exit code after the command printed its own output
// (for example `warden health` exiting 2 on a critical check).
struct ExitCode {
    int code;
};

// Options most subcommands take. -d accepts a conninfo string or a URI; when absent,
// DATABASE_URL, then libpq's PG* variables, .pgpass and service files apply.
struct ConnectionOptions {
    std::string conninfo;
};

void add_connection_option(CLI::App* cmd, ConnectionOptions& opts);

// Sets the action a parsed subcommand runs; it returns the process exit code.
void on_run(CLI::App* cmd, std::function<int()> action);

// Each command group registers itself from its own file, at static initialisation:
//   static const bool registered = warden::cli::add_command_group(30, add_backup_commands);
// `order` fixes where the group appears in `warden --help`.
bool add_command_group(int order, void (*add)(CLI::App&));

// Adds every registered group to the application, in order.
void register_commands(CLI::App& app);
int run_selected(CLI::App& app);

}  // namespace warden::cli
