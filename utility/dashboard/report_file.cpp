#include "dashboard/report_file.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dashboard/pages.hpp"
#include "dashboard/render.hpp"
#include "error.hpp"

namespace warden::dashboard {

void write_html_report(Connection& conn, const std::string& path)
{
    // Relation names with their schema, as the dashboard shows them.
    conn.exec("SET search_path = pg_catalog, pg_temp");
    std::string html = render_page(page_data(conn, "report", "24h"), true, load_chartjs());

    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..")
        throw Error("22023", "--html " + path + ": name a file");
    std::string temp = (slash == std::string::npos ? std::string() : dir) + "." + base + ".XXXXXX";
    std::vector<char> name(temp.begin(), temp.end());
    name.push_back('\0');
    int fd = mkostemp(name.data(), O_CLOEXEC);  // O_EXCL, mode 0600
    if (fd < 0)
        throw Error("58030", "--html " + path + ": cannot create a file in " + dir + ": " +
                                 std::strerror(errno));
    auto fail = [&](const char* what) {
        int err = errno;
        ::close(fd);
        ::unlink(name.data());
        throw Error("58030", "--html " + path + ": " + what + ": " + std::strerror(err));
    };
    std::size_t done = 0;
    while (done < html.size()) {
        ssize_t n = ::write(fd, html.data() + done, html.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("write failed");
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0)
        fail("fsync failed");
    if (::close(fd) != 0) {
        int err = errno;
        ::unlink(name.data());
        throw Error("58030", "--html " + path + ": close failed: " + std::strerror(err));
    }
    if (::rename(name.data(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(name.data());
        throw Error("58030", "--html " + path + ": " + std::strerror(err));
    }
}

}  // namespace warden::dashboard
