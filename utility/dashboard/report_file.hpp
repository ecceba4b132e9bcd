// `warden health --html FILE`: the overview and charts as one self-contained file.
#pragma once

#include <string>

#include "connection.hpp"

namespace warden::dashboard {

// Renders the report page (Chart.js inlined) and writes it to path: a new file beside it
// (O_EXCL, mode 0600), synced, then renamed over path, so that a symlink planted at path is
// replaced rather than followed and a reader never sees half a file. Throws warden::Error.
void write_html_report(Connection& conn, const std::string& path);

}  // namespace warden::dashboard
