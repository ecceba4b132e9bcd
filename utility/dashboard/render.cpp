#include "dashboard/render.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dashboard/pages.hpp"
#include "error.hpp"

namespace warden::dashboard {

namespace {

std::string escape_html(const std::string& s)
{
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

// JSON inside <script>: '<', '>' and '&' only occur in strings, where \u escapes mean the same.
std::string script_safe_json(const nlohmann::ordered_json& j)
{
    std::string dumped = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::string out;
    out.reserve(dumped.size());
    for (char c : dumped) {
        if (c == '<') out += "\\u003c";
        else if (c == '>') out += "\\u003e";
        else if (c == '&') out += "\\u0026";
        else out += c;
    }
    return out;
}

// An inlined script must not close its own element.
std::string script_safe_code(const std::string& code)
{
    std::string out;
    std::size_t start = 0, at;
    while ((at = code.find("</", start)) != std::string::npos) {
        out.append(code, start, at - start);
        out += "<\\/";
        start = at + 2;
    }
    out.append(code, start, std::string::npos);
    return out;
}

}  // namespace

std::string load_chartjs(const std::string& path)
{
    auto fail = [&](const std::string& why) -> Error {
        return Error("58P01", "Chart.js at " + path + ": " + why +
                                  " (apt-get install libjs-chart.js)");
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw fail(std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 8 * 1024 * 1024) {
        ::close(fd);
        throw fail("not a regular file of at most 8 MiB");
    }
    std::string content(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::read(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ::close(fd);
            throw fail(n < 0 ? std::strerror(errno) : "shorter than its size");
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return content;
}

std::string render_page(const nlohmann::ordered_json& data, bool self_contained, const std::string& chartjs)
{
    std::string title = data.value("title", "pg_warden");
    std::string html = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                       "<title>" + escape_html(title) + " · pg_warden</title>";
    if (self_contained)
        html += "<style>" + dashboard_css() + "</style>";
    else
        html += "<link rel=\"stylesheet\" href=\"/static/dashboard.css\">";
    html += "</head><body data-page=\"" + escape_html(data.value("page", "")) + "\" data-mode=\"" +
            (self_contained ? "file" : "server") + "\">";
    html += "<header><div class=\"brand\">pg_warden</div><nav>";
    if (!self_contained)
        for (const auto& p : pages())
            html += "<a href=\"" + p.path + "\"" +
                    (p.id == data.value("page", "") ? " class=\"current\"" : "") + ">" +
                    escape_html(p.title) + "</a>";
    html += "</nav></header><main id=\"main\"></main>";
    html += "<script id=\"warden-data\" type=\"application/json\">" + script_safe_json(data) +
            "</script>";
    if (self_contained) {
        html += "<script>" + script_safe_code(chartjs) + "</script>";
        html += "<script>" + script_safe_code(dashboard_js()) + "</script>";
    } else {
        html += "<script src=\"/static/chart.min.js\"></script>"
                "<script src=\"/static/dashboard.js\"></script>";
    }
    html += "</body></html>\n";
    return html;
}

}  // namespace warden::dashboard
