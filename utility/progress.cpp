#include "progress.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace warden {

std::string human_bytes(std::uint64_t bytes)
{
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

Progress::Progress(std::string what, bool quiet)
    : what_(std::move(what)), enabled_(!quiet && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_(start_)
{
}

Progress::~Progress() { clear(); }

void Progress::update(std::uint64_t done, std::uint64_t total)
{
    if (!enabled_)
        return;
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(250))
        return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    std::string line = fmt::format("{}: {}", what_, human_bytes(done));
    if (total > 0) {
        double pct = 100.0 * static_cast<double>(done) / static_cast<double>(total);
        line += fmt::format(" of ~{} ({:.0f}%)", human_bytes(total), pct > 100 ? 100.0 : pct);
    }
    line += fmt::format(", {}/s", human_bytes(static_cast<std::uint64_t>(rate)));
    if (total > done && rate > 0) {
        auto eta = static_cast<long>(static_cast<double>(total - done) / rate);
        line += fmt::format(", ETA {}:{:02}", eta / 60, eta % 60);
    }
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void Progress::clear()
{
    if (enabled_ && drawn_) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
        drawn_ = false;
    }
}

}  // namespace warden
