// The dashboard's pages: which question each answers and where its data comes from. Every
// section is read from a view or function the JSON report also uses (warden.health_report,
// the health_* views, pg_warden's own tables), never a second implementation of a check.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "connection.hpp"

namespace warden::dashboard {

struct PageInfo {
    std::string id;        // "overview", "charts", ...
    std::string path;      // "/", "/charts", ...
    std::string title;
    std::string question;  // the one question the page answers
};

// The pages of the server, in menu order.
const std::vector<PageInfo>& pages();

// The time ranges the charts offer ("1h", "6h", "24h", "7d").
const std::vector<std::string>& chart_ranges();
bool valid_range(const std::string& range);

// The data of one page (or "report": the overview and the charts, for `warden health
// --html`): {"page", "title", "question", "database", "generated_at", "status", "range",
// "sections": [{"kind": "checks" | "series" | "table", "title", "rows" | "error"}]}.
// A section whose query fails carries the error instead of rows; a lost connection throws.
nlohmann::ordered_json page_data(Connection& conn, const std::string& page, const std::string& range);

}  // namespace warden::dashboard
