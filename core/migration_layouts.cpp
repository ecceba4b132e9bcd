// Migration folder layouts: one file-name parser per layout behind one record type, and
// the detection that tries each (as golang-migrate's source/parse.go does per format).
//
//   golang-migrate  NNN_name.up.sql, NNN_name.down.sql, NNN_name.sql (up only)
//   flyway          V1.2.10__desc.sql, U1.2.10__desc.sql (its undo, the down script),
//                   R__desc.sql (repeatable); versions ordered part by part
//                   (flyway_ledger_version)
//   dbmate          NNN_name.sql holding "-- migrate:up" and "-- migrate:down" sections,
//                   "transaction:false" after a marker for no transaction; node-pg-migrate's
//                   SQL files ("-- Up Migration", "-- Down Migration") read the same way
//   suffixed        V0001.Name.up.sql, NNN_name[.DIALECT][.autocommit].up|down.sql: a
//                   postgres file wins over a dialect-less one, other dialects are
//                   ignored, .autocommit. runs outside a transaction
//
// The ledger never learns the layout: it gets digits for the version and the name the
// file gives.
#include <algorithm>
#include <map>

#include "checksum.hpp"
#include "error.hpp"
#include "migration_files.hpp"

namespace warden {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

[[noreturn]] void bad_input(const std::string& message, const std::string& hint = {})
{
    throw Error(sqlstate::invalid_parameter_value, message, {}, hint);
}

bool ends_with(std::string_view s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix)
{
    return s.substr(0, prefix.size()) == prefix;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || is_digit(c); }

// Names in the other layouts may hold dots and spaces too (Flyway descriptions, dbmate
// names); never a tab or newline (the ledger comparison sends tab-separated lines) or a
// control character.
bool is_wide_name(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u >= 0x80 || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || is_digit(c) ||
               c == '_' || c == '-' || c == '.' || c == ' ';
    });
}

// One file as a layout reads its name.
struct Entry {
    std::string version;  // as written
    std::string ledger_version;
    std::string name;
    ScriptKind kind = ScriptKind::up;
    bool no_transaction = false;  // the name says so (.autocommit.)
    int rank = 0;  // suffixed: 2 postgres, 1 no dialect; a higher rank wins
    bool ignored = false;  // a file of another dialect
    bool repeatable = false;  // Flyway's R__description.sql
};

std::optional<Entry> parse_golang(std::string_view file_name)
{
    auto parsed = parse_migration_file_name(file_name);
    if (!parsed)
        return std::nullopt;
    Entry e;
    e.version = parsed->version;
    e.ledger_version = parsed->version;
    e.name = parsed->name;
    e.kind = parsed->kind == ScriptKind::down ? ScriptKind::down : ScriptKind::up;
    return e;
}

// V<version>__<description>.sql and U<version>__<description>.sql; a version is digits
// parts separated by . or _ (Flyway reads V1_2 as 1.2).
std::optional<Entry> parse_flyway(std::string_view file_name)
{
    if (!ends_with(file_name, ".sql") || file_name.size() < 6)
        return std::nullopt;
    char prefix = file_name[0];
    if (prefix == 'R' && file_name.substr(1, 2) == "__") {
        std::string_view desc = file_name.substr(3, file_name.size() - 7);
        if (!is_wide_name(desc))
            return std::nullopt;
        Entry e;
        e.name = std::string(desc);
        e.repeatable = true;
        return e;
    }
    if (prefix != 'V' && prefix != 'U')
        return std::nullopt;
    std::string_view stem = file_name.substr(1, file_name.size() - 5);
    auto sep = stem.find("__");
    if (sep == std::string_view::npos || sep == 0)
        return std::nullopt;
    std::string_view version = stem.substr(0, sep);
    std::string_view desc = stem.substr(sep + 2);
    bool digit_before = false;
    for (char c : version) {
        if (is_digit(c)) {
            digit_before = true;
        } else if ((c == '.' || c == '_') && digit_before) {
            digit_before = false;
        } else {
            return std::nullopt;
        }
    }
    if (!digit_before || !is_wide_name(desc))
        return std::nullopt;
    Entry e;
    e.version = std::string(version);
    std::replace(e.version.begin(), e.version.end(), '_', '.');
    e.ledger_version = flyway_ledger_version(e.version);
    e.name = std::string(desc);
    e.kind = prefix == 'U' ? ScriptKind::down : ScriptKind::up;
    return e;
}

// NNN_name.sql; whether the content has dbmate sections is checked with the content.
std::optional<Entry> parse_dbmate(std::string_view file_name)
{
    if (!ends_with(file_name, ".sql"))
        return std::nullopt;
    std::string_view stem = file_name.substr(0, file_name.size() - 4);
    auto underscore = stem.find('_');
    if (underscore == std::string_view::npos || underscore == 0 ||
        !is_version(stem.substr(0, underscore)) || !is_wide_name(stem.substr(underscore + 1)))
        return std::nullopt;
    Entry e;
    e.version = std::string(stem.substr(0, underscore));
    e.ledger_version = e.version;
    e.name = std::string(stem.substr(underscore + 1));
    return e;
}

std::optional<Entry> parse_suffixed(std::string_view file_name)
{
    Entry e;
    std::string_view stem;
    if (ends_with(file_name, ".up.sql")) {
        stem = file_name.substr(0, file_name.size() - 7);
    } else if (ends_with(file_name, ".down.sql")) {
        stem = file_name.substr(0, file_name.size() - 9);
        e.kind = ScriptKind::down;
    } else {
        return std::nullopt;
    }
    if (ends_with(stem, ".autocommit")) {
        e.no_transaction = true;
        stem.remove_suffix(11);
    }
    std::string_view version, rest;
    if (stem.size() > 1 && stem[0] == 'V' && is_digit(stem[1])) {
        auto dot = stem.find('.');
        if (dot == std::string_view::npos)
            return std::nullopt;
        version = stem.substr(1, dot - 1);
        rest = stem.substr(dot + 1);
    } else {
        auto underscore = stem.find('_');
        if (underscore == std::string_view::npos)
            return std::nullopt;
        version = stem.substr(0, underscore);
        rest = stem.substr(underscore + 1);
    }
    std::string_view name = rest, dialect;
    if (auto dot = rest.find('.'); dot != std::string_view::npos) {
        name = rest.substr(0, dot);
        dialect = rest.substr(dot + 1);
        if (dialect.empty() || !std::all_of(dialect.begin(), dialect.end(), is_lower_alnum))
            return std::nullopt;
    }
    if (!is_version(version) || name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) {
            return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
        }))
        return std::nullopt;
    e.version = std::string(version);
    e.ledger_version = e.version;
    e.name = std::string(name);
    if (dialect.empty())
        e.rank = 1;
    else if (dialect == "postgres" || dialect == "postgresql" || dialect == "pg")
        e.rank = 2;
    else
        e.ignored = true;
    return e;
}

std::optional<Entry> parse_name(Layout layout, std::string_view file_name)
{
    switch (layout) {
    case Layout::golang_migrate:
        return parse_golang(file_name);
    case Layout::flyway:
        return parse_flyway(file_name);
    case Layout::dbmate:
        return parse_dbmate(file_name);
    case Layout::suffixed:
        return parse_suffixed(file_name);
    case Layout::automatic:
        break;
    }
    return std::nullopt;
}

// A dbmate marker line: "-- migrate:up" or "-- migrate:down", then options.
struct Marker {
    std::size_t start, end;  // the line, without its newline
    bool up;
    bool no_transaction;
};

std::vector<Marker> dbmate_markers(std::string_view text)
{
    std::vector<Marker> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        if (starts_with(line, "--")) {
            std::string_view rest = line.substr(2);
            rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
            bool up = starts_with(rest, "migrate:up");
            bool down = starts_with(rest, "migrate:down");
            if (up || down) {
                std::string_view options = rest.substr(up ? 10 : 12);
                out.push_back({pos, end, up,
                               options.find("transaction:false") != std::string_view::npos});
            } else if (auto trimmed = rest.substr(0, rest.find_last_not_of(" \t\r") + 1);
                       trimmed == "Up Migration" || trimmed == "Down Migration") {
                // node-pg-migrate's SQL files: the same two sections, other markers.
                out.push_back({pos, end, trimmed[0] == 'U', false});
            }
        }
        pos = end + 1;
    }
    return out;
}

bool has_dbmate_sections(std::string_view text)
{
    for (const Marker& m : dbmate_markers(text))
        if (m.up)
            return true;
    return false;
}

std::string strip_bom(const std::string& text)
{
    return starts_with(text, kBom) ? text.substr(kBom.size()) : text;
}

std::string quoted_list(const std::vector<std::string>& names)
{
    std::string out;
    std::size_t shown = std::min<std::size_t>(names.size(), 10);
    for (std::size_t i = 0; i < shown; ++i)
        out += (i ? ", \"" : "\"") + names[i] + "\"";
    if (names.size() > shown)
        out += " and " + std::to_string(names.size() - shown) + " more";
    return out;
}

const char* kLayoutsHint =
    "Layouts: golang-migrate (NNN_name.up.sql, NNN_name.down.sql, NNN_name.sql), flyway "
    "(V1.2__desc.sql, U1.2__desc.sql), dbmate (NNN_name.sql with -- migrate:up), suffixed "
    "(NNN_name[.postgres][.autocommit].up.sql, V0001.Name.up.sql); --format forces one.";

// The .sql files of a folder that the layout can't read.
std::vector<std::string> misfits(Layout layout, const std::vector<ScriptFile>& files)
{
    std::vector<std::string> out;
    for (const ScriptFile& f : files) {
        if (!ends_with(f.file_name, ".sql"))
            continue;
        bool fits;
        try {
            fits = parse_name(layout, f.file_name).has_value();
        } catch (const Error&) {
            fits = false;  // a Flyway version too long to order
        }
        // A dbmate file read whole would run its down section too.
        if (fits && (layout == Layout::dbmate || layout == Layout::golang_migrate))
            fits = has_dbmate_sections(strip_bom(f.content)) == (layout == Layout::dbmate);
        if (!fits)
            out.push_back(f.file_name);
    }
    return out;
}

Layout detect_layout(const std::vector<ScriptFile>& files)
{
    // Flyway and dbmate first: a dbmate folder also fits golang-migrate's NNN_name.sql, and
    // a golang-migrate folder fits the suffixed layout.
    static constexpr Layout order[] = {Layout::flyway, Layout::dbmate, Layout::golang_migrate,
                                       Layout::suffixed};
    if (std::none_of(files.begin(), files.end(),
                     [](const ScriptFile& f) { return ends_with(f.file_name, ".sql"); }))
        return Layout::golang_migrate;
    std::map<Layout, std::vector<std::string>> bad;
    for (Layout l : order) {
        bad[l] = misfits(l, files);
        if (bad[l].empty())
            return l;
    }
    // The layout that reads the most files names the rest; ties go to golang-migrate.
    Layout best = Layout::golang_migrate;
    for (Layout l : order)
        if (bad[l].size() < bad[best].size())
            best = l;
    const std::vector<std::string>& best_misfits = bad[best];
    if (best_misfits.size() == 1)
        bad_input("\"" + best_misfits[0] + "\" is not a migration file name", kLayoutsHint);
    bad_input("the files of the folder fit no migration layout; as " +
                  std::string(layout_name(best)) + " these do not parse: " +
                  quoted_list(best_misfits),
              kLayoutsHint);
}

// A migration being assembled from its files.
struct Pending {
    MigrationFile m;
    bool has_up = false;
    int up_rank = 0, down_rank = 0;
};

void add_script(Pending& p, const Entry& e, const std::string& file_name, std::string text,
                bool no_transaction)
{
    MigrationFile& m = p.m;
    int& rank = e.kind == ScriptKind::down ? p.down_rank : p.up_rank;
    bool taken = e.kind == ScriptKind::down ? m.has_down : p.has_up;
    if (taken && rank == e.rank)
        bad_input("duplicate version " + e.version + ": \"" + file_name + "\" and \"" +
                  (e.kind == ScriptKind::down ? m.down_file : m.up_file) + "\"");
    if (taken && rank > e.rank)
        return;  // a postgres file already won over this dialect-less one
    rank = e.rank;
    if (e.kind == ScriptKind::down) {
        m.has_down = true;
        m.down_file = file_name;
        m.down_sql = std::move(text);
        m.down_transactional = !no_transaction;
    } else {
        p.has_up = true;
        m.up_file = file_name;
        m.transactional = !no_transaction;
        m.checksum = script_checksum(text);
        m.up_sql = std::move(text);
    }
}

}  // namespace

const char* layout_name(Layout layout)
{
    switch (layout) {
    case Layout::automatic:
        return "auto";
    case Layout::golang_migrate:
        return "golang-migrate";
    case Layout::flyway:
        return "flyway";
    case Layout::dbmate:
        return "dbmate";
    case Layout::suffixed:
        return "suffixed";
    }
    return "auto";
}

std::optional<Layout> parse_layout(std::string_view name)
{
    for (Layout l : {Layout::automatic, Layout::golang_migrate, Layout::flyway, Layout::dbmate,
                     Layout::suffixed})
        if (name == layout_name(l))
            return l;
    return std::nullopt;
}

std::string flyway_ledger_version(std::string_view version)
{
    constexpr std::size_t kParts = 5, kWidth = 6;
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= version.size(); ++i)
        if (i == version.size() || version[i] == '.' || version[i] == '_') {
            parts.push_back(version.substr(start, i - start));
            start = i + 1;
        }
    for (auto p : parts)
        if (!is_version(p))
            bad_input("invalid Flyway version \"" + std::string(version) + "\"");
    if (parts.size() > kParts)
        bad_input("Flyway version \"" + std::string(version) + "\" has more than " +
                  std::to_string(kParts) + " parts");
    std::string out(version_key(parts[0]));
    for (std::size_t i = 1; i < kParts; ++i) {
        std::string_view p = i < parts.size() ? version_key(parts[i]) : "0";
        if (p.size() > kWidth)
            bad_input("Flyway version \"" + std::string(version) + "\": a part after the first "
                      "is above 999999");
        out.append(kWidth - p.size(), '0');
        out.append(p);
    }
    return out;
}

std::vector<MigrationFile> build_migration_set(const std::vector<ScriptFile>& files,
                                               Layout layout, Layout* detected,
                                               std::vector<RepeatableFile>* repeatables)
{
    if (layout == Layout::automatic) {
        layout = detect_layout(files);
    } else if (auto bad = misfits(layout, files); !bad.empty()) {
        bad_input(bad.size() == 1
                      ? "\"" + bad[0] + "\" is not a " + layout_name(layout) + " migration file"
                      : std::string("not ") + layout_name(layout) + " migration files: " +
                            quoted_list(bad),
                  kLayoutsHint);
    }
    if (detected)
        *detected = layout;

    // Keyed by the ledger version without leading zeros: 001 and 1 are the same version.
    std::map<std::string, Pending> by_version;
    for (const ScriptFile& f : files) {
        if (!ends_with(f.file_name, ".sql"))
            continue;
        Entry e = *parse_name(layout, f.file_name);
        if (e.ignored)
            continue;
        if (!is_valid_utf8(f.content))
            bad_input("\"" + f.file_name + "\" is not valid UTF-8");
        std::string text = strip_bom(f.content);
        if (e.repeatable) {
            if (!repeatables)
                bad_input("\"" + f.file_name + "\" is a repeatable migration, not read here");
            parse_directives(text, f.file_name);
            repeatables->push_back({f.file_name, e.name, text, script_checksum(text)});
            continue;
        }

        std::string key(version_key(e.ledger_version));
        Pending& p = by_version[key];
        MigrationFile& m = p.m;
        if (!m.version.empty() && m.name != e.name)
            bad_input("duplicate version " + e.version + ": \"" + f.file_name + "\" and \"" +
                      (p.has_up ? m.up_file : m.down_file) + "\"");
        m.version = e.ledger_version;
        m.file_version = e.version;
        m.name = e.name;

        if (layout == Layout::dbmate) {
            // One file, two sections: what precedes "-- migrate:up" is neither.
            auto markers = dbmate_markers(text);
            const Marker* up = nullptr;
            const Marker* down = nullptr;
            for (const Marker& mk : markers) {
                if ((mk.up && up) || (!mk.up && down))
                    bad_input("\"" + f.file_name + "\" has two \"-- migrate:" +
                              (mk.up ? "up" : "down") + "\" lines");
                (mk.up ? up : down) = &mk;
            }
            if (down && down->start < up->start)
                bad_input("\"" + f.file_name + "\": \"-- migrate:down\" comes before \"-- migrate:up\"");
            std::size_t up_from = std::min(up->end + 1, text.size());
            std::size_t up_to = down ? down->start : text.size();
            std::string up_text = text.substr(up_from, up_to - up_from);
            add_script(p, e, f.file_name, up_text,
                       up->no_transaction || parse_directives(up_text, f.file_name).no_transaction);
            if (down) {
                std::string down_text = text.substr(std::min(down->end + 1, text.size()));
                Entry down_entry = e;
                down_entry.kind = ScriptKind::down;
                add_script(p, down_entry, f.file_name, down_text,
                           down->no_transaction ||
                               parse_directives(down_text, f.file_name).no_transaction);
            }
            continue;
        }
        bool no_transaction = e.no_transaction || parse_directives(text, f.file_name).no_transaction;
        add_script(p, e, f.file_name, std::move(text), no_transaction);
    }

    std::vector<MigrationFile> out;
    out.reserve(by_version.size());
    for (auto& [key, p] : by_version) {
        if (!p.has_up)
            bad_input("down file \"" + p.m.down_file + "\" has no up file",
                      "Add the version's up file or remove the down file.");
        out.push_back(std::move(p.m));
    }
    std::sort(out.begin(), out.end(), [](const MigrationFile& a, const MigrationFile& b) {
        return compare_versions(a.version, b.version) < 0;
    });
    if (repeatables)
        std::sort(repeatables->begin(), repeatables->end(),
                  [](const RepeatableFile& a, const RepeatableFile& b) { return a.name < b.name; });
    return out;
}

}  // namespace warden
