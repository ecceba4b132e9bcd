// A one-line progress display on stderr, shown only on a terminal and without --quiet.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace warden {

std::string human_bytes(std::uint64_t bytes);

class Progress {
public:
    Progress(std::string what, bool quiet);
    ~Progress();
    // done: bytes so far; total: the expected total, 0 if unknown. Redraws at most
    // a few times per second.
    void update(std::uint64_t done, std::uint64_t total);
    void clear();

private:
    std::string what_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace warden
