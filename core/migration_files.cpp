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

bool is_blank(std::string_view s)
{
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
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

std::vector<MigrationFile> build_migration_set(const std::vector<ScriptFile>& files)
{
    struct Pending {
        MigrationFile m;
        bool has_up = false;
    };
    // Keyed by the version without leading zeros: 001 and 1 are the same version.
    std::map<std::string, Pending> by_version;

    for (const ScriptFile& f : files) {
        auto parsed = parse_migration_file_name(f.file_name);
        if (!parsed) {
            if (ends_with(f.file_name, ".sql"))
                bad_input("\"" + f.file_name + "\" is not a migration file name",
                          "Name migrations NNN_name.up.sql, NNN_name.down.sql or NNN_name.sql "
                          "(NNN digits, name of letters, digits, _ and -).");
            continue;
        }
        if (!is_valid_utf8(f.content))
            bad_input("\"" + f.file_name + "\" is not valid UTF-8");
        if (is_blank(f.content))
            bad_input("\"" + f.file_name + "\" is empty");
        ScriptDirectives directives = parse_directives(f.content, f.file_name);

        std::string key(version_key(parsed->version));
        Pending& p = by_version[key];
        MigrationFile& m = p.m;
        if (!m.version.empty() && m.name != parsed->name)
            bad_input("duplicate version " + parsed->version + ": \"" + f.file_name + "\" and \"" +
                      (p.has_up ? m.up_file : m.down_file) + "\"");
        m.version = parsed->version;
        m.name = parsed->name;
        if (parsed->kind == ScriptKind::down) {
            if (m.has_down)
                bad_input("duplicate version " + parsed->version + ": two down files");
            m.has_down = true;
            m.down_file = f.file_name;
            m.down_sql = f.content;
        } else {
            if (p.has_up)
                bad_input("duplicate version " + parsed->version + ": \"" + f.file_name +
                          "\" and \"" + m.up_file + "\"");
            p.has_up = true;
            m.up_file = f.file_name;
            m.up_sql = f.content;
            m.transactional = !directives.no_transaction;
            m.checksum = script_checksum(f.content);
        }
    }

    std::vector<MigrationFile> out;
    out.reserve(by_version.size());
    for (auto& [key, p] : by_version) {
        if (!p.has_up)
            bad_input("down file \"" + p.m.down_file + "\" has no up file",
                      "Add " + p.m.version + "_" + p.m.name + ".up.sql or remove the down file.");
        out.push_back(std::move(p.m));
    }
    std::sort(out.begin(), out.end(), [](const MigrationFile& a, const MigrationFile& b) {
        return compare_versions(a.version, b.version) < 0;
    });
    return out;
}

}  // namespace warden
