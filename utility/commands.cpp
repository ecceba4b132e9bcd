#include "commands.hpp"

#include <map>

namespace warden::cli {

namespace {
// The action of each leaf subcommand, found again after parsing.
std::map<const CLI::App*, std::function<int()>>& actions()
{
    static std::map<const CLI::App*, std::function<int()>> table;
    return table;
}

int run_leaf(CLI::App* app)
{
    for (CLI::App* sub : app->get_subcommands())
        return run_leaf(sub);
    auto it = actions().find(app);
    if (it == actions().end())
        throw CLI::CallForHelp();
    return it->second();
}
}  // namespace

void add_connection_option(CLI::App* cmd, ConnectionOptions& opts)
{
    cmd->add_option("-d,--dbname", opts.conninfo,
                    "conninfo string or postgresql:// URI (default: $DATABASE_URL, then PG* "
                    "variables)");
}

void on_run(CLI::App* cmd, std::function<int()> action) { actions()[cmd] = std::move(action); }

namespace {
std::multimap<int, void (*)(CLI::App&)>& groups()
{
    static std::multimap<int, void (*)(CLI::App&)> table;
    return table;
}
}  // namespace

bool add_command_group(int order, void (*add)(CLI::App&))
{
    groups().emplace(order, add);
    return true;
}

void register_commands(CLI::App& app)
{
    for (const auto& [order, add] : groups())
        add(app);
}

int run_selected(CLI::App& app)
{
    try {
        return run_leaf(&app);
    } catch (const CLI::CallForHelp& e) {
        app.exit(e);
        return 2;
    }
}

}  // namespace warden::cli
