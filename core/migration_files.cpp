#include "migration_files.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "checksum.hpp"
#include "error.hpp"

namespace warden {

namespace {

bool ends_with(std::string_view s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}


[[noreturn]] void bad_input(const std::string& message, const std::string& hint = {})
{
    throw Error(sqlstate::invalid_parameter_value, message, {}, hint);
}


}  // namespace

bool is_version(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view version_key(std::string_view v)
{
    while (v.size() > 1 && v.front() == '0')
        v.remove_prefix(1);
    return v;
}

int compare_versions(std::string_view a, std::string_view b)
{
    a = version_key(a);
    b = version_key(b);
    if (a.size() != b.size())
        return a.size() < b.size() ? -1 : 1;
    int c = a.compare(b);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

std::optional<MigrationFileName> parse_migration_file_name(std::string_view file_name)
{
    MigrationFileName out;
    std::string_view stem;
    if (ends_with(file_name, ".up.sql")) {
        out.kind = ScriptKind::up;
        stem = file_name.substr(0, file_name.size() - 7);
    } else if (ends_with(file_name, ".down.sql")) {
        out.kind = ScriptKind::down;
        stem = file_name.substr(0, file_name.size() - 9);
    } else if (ends_with(file_name, ".sql")) {
        out.kind = ScriptKind::plain;
        stem = file_name.substr(0, file_name.size() - 4);
    } else {
        return std::nullopt;
    }
    auto underscore = stem.find('_');
    if (underscore == std::string_view::npos || underscore == 0)
        return std::nullopt;
    std::string_view version = stem.substr(0, underscore);
    std::string_view name = stem.substr(underscore + 1);
    if (!is_version(version) || name.empty() || !std::all_of(name.begin(), name.end(), is_name_char))
        return std::nullopt;
    out.version = std::string(version);
    out.name = std::string(name);
    return out;
}

ScriptDirectives parse_directives(std::string_view script, std::string_view file_name)
{
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    if (script.substr(0, kBom.size()) == kBom)
        script.remove_prefix(kBom.size());

    // Directives live in the leading block of blank and "--" comment lines.
    ScriptDirectives out;
    std::size_t pos = 0;
    int line_no = 0;
    while (pos < script.size()) {
        std::size_t end = script.find_first_of("\r\n", pos);
        if (end == std::string_view::npos)
            end = script.size();
        std::string_view line = script.substr(pos, end - pos);
        ++line_no;
        pos = end + 1;
        if (end < script.size() && script[end] == '\r' && pos < script.size() && script[pos] == '\n')
            ++pos;

        auto first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos)
            continue;
        line.remove_prefix(first);
        if (line.substr(0, 2) != "--")
            break;
        line.remove_prefix(2);
        line.remove_prefix(std::min(line.find_first_not_of(" \t"), line.size()));
        if (line.substr(0, 7) != "warden:")
            continue;
        std::string_view directive = line.substr(7);
        directive = directive.substr(0, directive.find_last_not_of(" \t") + 1);
        if (directive == "no-transaction") {
            out.no_transaction = true;
        } else if (directive == "allow rewrite" || directive == "allow lock" ||
                   directive == "allow scan") {
            out.allow.emplace_back(directive.substr(6));
        } else {
            bad_input(std::string(file_name) + ", line " + std::to_string(line_no) +
                          ": unknown directive \"-- warden:" + std::string(directive) + "\"",
                      "Directives: \"-- warden:no-transaction\", \"-- warden:allow rewrite|lock|scan\".");
        }
    }
    return out;
}

bool is_valid_utf8(std::string_view s)
{
    std::size_t i = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    while (i < s.size()) {
        unsigned char c = p[i];
        std::size_t len;
        unsigned cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > s.size())
            return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += len;
    }
    return true;
}

}  // namespace warden
