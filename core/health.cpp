#include "health.hpp"

#include <cmath>
#include <cstdio>

namespace warden::health {

Status parse_status(std::string_view text)
{
    if (text == "ok")
        return Status::ok;
    if (text == "warning")
        return Status::warning;
    if (text == "critical")
        return Status::critical;
    return Status::unknown;
}

const char* status_name(Status s)
{
    switch (s) {
    case Status::ok: return "ok";
    case Status::warning: return "warning";
    case Status::critical: return "critical";
    case Status::unknown: break;
    }
    return "unknown";
}

int exit_code(Status s)
{
    switch (s) {
    case Status::ok: return 0;
    case Status::warning: return 1;
    case Status::critical: return 2;
    case Status::unknown: break;
    }
    return 3;
}

std::string prometheus_label_value(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

std::string human_number(double value, int decimals)
{
    if (std::isinf(value))
        return value > 0 ? "infinity" : "-infinity";
    if (std::isnan(value))
        return "NaN";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(value));
    std::string digits = buf;
    std::string fraction;
    if (auto dot = digits.find('.'); dot != std::string::npos) {
        fraction = digits.substr(dot);
        digits.erase(dot);
        while (!fraction.empty() && (fraction.back() == '0' || fraction.back() == '.'))
            fraction.pop_back();
    }
    std::string grouped;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            grouped += ',';
        grouped += digits[i];
    }
    bool negative = value < 0 && (grouped != "0" || !fraction.empty());
    return (negative ? "-" : "") + grouped + fraction;
}

std::string human_bytes(double bytes)
{
    if (std::isinf(bytes) || std::isnan(bytes))
        return human_number(bytes);
    static const char* const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    int unit = 0;
    double v = bytes;
    while (std::fabs(v) >= 1024 && unit < 5) {
        v /= 1024;
        ++unit;
    }
    return human_number(v, unit == 0 ? 0 : 1) + " " + units[unit];
}

}  // namespace warden::health
