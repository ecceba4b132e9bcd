#include "backup_paths.hpp"

#include <cstdint>
#include <cstdio>

namespace warden {

namespace {
// Linux's PATH_MAX: no longer name can be opened anyway.
constexpr std::size_t kMaxPath = 4096;

// Checks the components of a path (without its leading '/', if any).
std::string components_problem(std::string_view path)
{
    std::size_t start = 0;
    for (;;) {
        std::size_t end = path.find('/', start);
        std::string_view part = path.substr(start, end == std::string_view::npos ? end : end - start);
        if (part.empty())
            return "is not canonical (an empty component)";
        if (part == ".")
            return "is not canonical (a \".\" component)";
        if (part == "..")
            return "has a \"..\" component";
        if (end == std::string_view::npos)
            return {};
        start = end + 1;
    }
}
}  // namespace

std::string member_path_problem(std::string_view path)
{
    if (path.empty())
        return "is empty";
    if (path.size() > kMaxPath)
        return "is longer than " + std::to_string(kMaxPath) + " bytes";
    if (path.find('\0') != std::string_view::npos)
        return "holds a NUL byte";
    if (path.front() == '/')
        return "is an absolute path";
    return components_problem(path);
}

std::string tablespace_oid_problem(std::string_view oid)
{
    if (oid.empty() || oid.size() > 10)
        return "is not an OID (a number from 1 to 4294967295)";
    std::uint64_t value = 0;
    for (char c : oid) {
        if (c < '0' || c > '9')
            return "is not an OID (a number from 1 to 4294967295)";
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (oid.front() == '0' || value > UINT32_MAX)
        return "is not an OID (a number from 1 to 4294967295)";
    return {};
}

std::string location_problem(std::string_view location)
{
    if (location.empty() || location.front() != '/')
        return "is not an absolute path";
    if (location.size() > kMaxPath)
        return "is longer than " + std::to_string(kMaxPath) + " bytes";
    if (location.find('\0') != std::string_view::npos)
        return "holds a NUL byte";
    if (location == "/")
        return "is the root directory";
    return components_problem(location.substr(1));
}

bool path_within(std::string_view inner, std::string_view outer)
{
    if (outer == "/")
        return !inner.empty() && inner.front() == '/';
    return inner.substr(0, outer.size()) == outer && (inner.size() == outer.size() || inner[outer.size()] == '/');
}

bool is_archive_name(std::string_view name, std::string_view stem)
{
    if (name.substr(0, stem.size()) != stem)
        return false;
    std::string_view rest = name.substr(stem.size());
    return rest == ".tar" || rest == ".tar.gz" || rest == ".tar.zst";
}

std::string printable(std::string_view name)
{
    std::string out;
    out.reserve(name.size());
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace warden
