// The health status scale shared by the extension's checks and `warden health`:
// ok < warning < critical, plus unknown, with the exit codes of check_postgres and Nagios.
#pragma once

#include <string>
#include <string_view>

namespace warden::health {

enum class Status { ok, warning, critical, unknown };

// "ok", "warning", "critical", "unknown"; anything else is unknown (a newer server may
// report a status this utility does not know, which must not pass for ok).
Status parse_status(std::string_view text);
const char* status_name(Status s);

// 0 ok, 1 warning, 2 critical, 3 unknown.
int exit_code(Status s);

// A Prometheus label value, escaped as the text exposition format requires: backslash,
// double quote and line feed.
std::string prometheus_label_value(std::string_view value);

// A number for humans: at most `decimals` decimals, trailing zeros removed, thousands
// grouped with commas ("1,500,000,000", "96.5").
std::string human_number(double value, int decimals = 2);

// A byte count for humans, in powers of 1024 as pg_size_pretty shows them ("64 MB").
std::string human_bytes(double bytes);

}  // namespace warden::health
