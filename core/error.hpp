// Errors raised by C++ code in pg_warden.
//
// C++ code throws warden::Error; the extension's bridge (extension/bridge.cpp) turns it
// into ereport(ERROR) with the same SQLSTATE once every destructor has run, and the
// utility prints its message as a one-line reason. No PostgreSQL headers here.
#pragma once

#include <stdexcept>
#include <string>

namespace warden {

class Error : public std::runtime_error {
public:
    // sqlstate: five characters, e.g. "22023" (invalid_parameter_value).
    Error(std::string sqlstate, const std::string& message, std::string detail = {},
          std::string hint = {})
        : std::runtime_error(message), sqlstate_(std::move(sqlstate)),
          detail_(std::move(detail)), hint_(std::move(hint)) {}

    const std::string& sqlstate() const noexcept { return sqlstate_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    std::string sqlstate_;
    std::string detail_;
    std::string hint_;
};

// SQLSTATEs pg_warden uses, named as PostgreSQL names them.
namespace sqlstate {
inline constexpr const char* invalid_parameter_value = "22023";
inline constexpr const char* data_exception = "22000";
inline constexpr const char* character_not_in_repertoire = "22021";
inline constexpr const char* object_not_in_prerequisite_state = "55000";
inline constexpr const char* lock_not_available = "55P03";
inline constexpr const char* internal_error = "XX000";
inline constexpr const char* out_of_memory = "53200";
}  // namespace sqlstate

}  // namespace warden
