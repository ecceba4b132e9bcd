// One HTML renderer for the dashboard's pages and for `warden health --html`: the page's
// data is embedded as JSON (inert: type application/json, '<' escaped) and drawn by a small
// script with Chart.js; DOM text only, never innerHTML, so names from the database cannot
// inject markup.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace warden::dashboard {

// Where Debian's libjs-chart.js puts the UMD build.
inline constexpr const char* kChartJsPath = "/usr/share/javascript/chart.js/chart.min.js";

// Reads Chart.js from the installed package; throws warden::Error with a one-line reason.
std::string load_chartjs(const std::string& path = kChartJsPath);

// The page's script and style, compiled into the utility.
const std::string& dashboard_js();
const std::string& dashboard_css();

// self_contained: scripts and style inlined (a file to mail); otherwise they are loaded from
// /static/ (the server, whose Content-Security-Policy allows no inline script).
std::string render_page(const nlohmann::ordered_json& data, bool self_contained,
                        const std::string& chartjs = {});

}  // namespace warden::dashboard
