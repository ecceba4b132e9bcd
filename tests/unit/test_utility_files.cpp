// The utility's file-safety layer and the catalog files written through it (the
// warden_fs library, CMakeLists.txt).

#include <catch2/catch.hpp>

#include "catalog_files.hpp"
#include "error.hpp"
#include "fs/safe_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace stdfs = std::filesystem;
using warden::Error;

namespace {
struct TempDir {
    stdfs::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/warden_files_test.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { stdfs::remove_all(path); }
};

std::string slurp(const stdfs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The umask of the process for one scope: modes must not depend on it.
struct ScopedUmask {
    mode_t saved;
    explicit ScopedUmask(mode_t mask) : saved(::umask(mask)) {}
    ~ScopedUmask() { ::umask(saved); }
};

mode_t mode_of(const stdfs::path& p)
{
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

warden::BackupInfo sample(const std::string& id)
{
    warden::BackupInfo b;
    b.id = id;
    b.kind = "physical";
    b.label = "nightly";
    b.finished_at = "2026-11-23T03:00:00Z";
    b.stop_lsn = "0/2000100";
    b.system_identifier = "7300000000000000001";
    return b;
}
}  // namespace

TEST_CASE("plain names are single path components", "[safe_file]")
{
    using warden::fs::is_plain_name;
    REQUIRE(is_plain_name("backup.json"));
    REQUIRE(is_plain_name("..."));
    REQUIRE_FALSE(is_plain_name(""));
    REQUIRE_FALSE(is_plain_name("."));
    REQUIRE_FALSE(is_plain_name(".."));
    REQUIRE_FALSE(is_plain_name("a/b"));
    REQUIRE_FALSE(is_plain_name(std::string_view("a\0b", 3)));
}

TEST_CASE("temporary names are unpredictable", "[safe_file]")
{
    std::string a = warden::fs::temp_name("postgresql.auto.conf");
    std::string b = warden::fs::temp_name("postgresql.auto.conf");
    REQUIRE(a.rfind("postgresql.auto.conf.tmp.", 0) == 0);
    REQUIRE(a.size() == std::string("postgresql.auto.conf.tmp.").size() + 16);
    REQUIRE(a != b);
    REQUIRE(a.find(std::to_string(::getpid())) == std::string::npos);
}

TEST_CASE("an atomic write replaces a planted symlink instead of following it", "[safe_file]")
{
    TempDir dir;
    std::ofstream(dir.path / "victim") << "secret\n";
    stdfs::create_symlink(dir.path / "victim", dir.path / "target.conf");
    auto d = warden::fs::Dir::open(dir.path.string());
    {
        ScopedUmask open_umask(0);
        warden::fs::write_file_atomically(d, "target.conf", "new\n");
    }
    REQUIRE(slurp(dir.path / "victim") == "secret\n");
    REQUIRE_FALSE(stdfs::is_symlink(dir.path / "target.conf"));
    REQUIRE(slurp(dir.path / "target.conf") == "new\n");
    REQUIRE(mode_of(dir.path / "target.conf") == 0600);
    // Nothing left behind under a temporary name.
    int entries = 0;
    for ([[maybe_unused]] const auto& e : stdfs::directory_iterator(dir.path))
        ++entries;
    REQUIRE(entries == 2);
}

TEST_CASE("exclusive creation meets no planted file or symlink", "[safe_file]")
{
    TempDir dir;
    std::ofstream(dir.path / "victim") << "secret\n";
    stdfs::create_symlink(dir.path / "victim", dir.path / "link");
    stdfs::create_symlink(dir.path / "nowhere", dir.path / "dangling");
    auto d = warden::fs::Dir::open(dir.path.string());
    REQUIRE_THROWS_WITH(warden::fs::create_exclusive(d, "link"), Catch::Contains("File exists"));
    REQUIRE_THROWS_WITH(warden::fs::create_exclusive(d, "dangling"), Catch::Contains("File exists"));
    REQUIRE_FALSE(stdfs::exists(dir.path / "nowhere"));
    REQUIRE(slurp(dir.path / "victim") == "secret\n");
    REQUIRE_THROWS_WITH(warden::fs::create_exclusive(d, "../escape"),
                        Catch::Contains("not a plain file name"));
    auto fd = warden::fs::create_exclusive(d, "fresh", 0640);
    REQUIRE(mode_of(dir.path / "fresh") == 0640);
}

TEST_CASE("an untrusted read refuses symlinks, non-files, other owners and big files",
          "[safe_file]")
{
    TempDir dir;
    std::ofstream(dir.path / "victim") << "secret\n";
    std::ofstream(dir.path / "plain") << "hello\n";
    stdfs::create_symlink(dir.path / "victim", dir.path / "link");
    stdfs::create_directory(dir.path / "sub");
    REQUIRE(::mkfifo((dir.path / "fifo").c_str(), 0600) == 0);
    auto d = warden::fs::Dir::open(dir.path.string());
    using warden::fs::read_small_file;
    REQUIRE(read_small_file(d, "plain", 100) == std::optional<std::string>("hello\n"));
    REQUIRE_FALSE(read_small_file(d, "absent", 100).has_value());
    REQUIRE_THROWS_WITH(read_small_file(d, "link", 100), Catch::Contains("symbolic link"));
    REQUIRE_THROWS_WITH(read_small_file(d, "sub", 100), Catch::Contains("not a regular file"));
    REQUIRE_THROWS_WITH(read_small_file(d, "fifo", 100), Catch::Contains("not a regular file"));
    REQUIRE_THROWS_WITH(read_small_file(d, "plain", 3), Catch::Contains("larger than 3 bytes"));
    REQUIRE_THROWS_WITH(read_small_file(d, "plain", 100, ::geteuid() + 1),
                        Catch::Contains("expected uid"));
    REQUIRE(read_small_file(d, "plain", 100, ::geteuid()).has_value());
}

TEST_CASE("a relative name from a manifest is walked without following links", "[safe_file]")
{
    TempDir dir;
    stdfs::create_directory(dir.path / "dump");
    std::ofstream(dir.path / "dump" / "toc.dat") << "toc";
    stdfs::create_directory(dir.path / "elsewhere");
    std::ofstream(dir.path / "elsewhere" / "toc.dat") << "planted";
    stdfs::create_directory_symlink(dir.path / "elsewhere", dir.path / "linked");
    auto d = warden::fs::Dir::open(dir.path.string());
    REQUIRE(warden::fs::open_untrusted_below(d, "dump/toc.dat").has_value());
    REQUIRE_FALSE(warden::fs::open_untrusted_below(d, "nodir/toc.dat").has_value());
    REQUIRE_THROWS_WITH(warden::fs::open_untrusted_below(d, "linked/toc.dat"),
                        Catch::Contains("symbolic link"));
    REQUIRE_THROWS_WITH(warden::fs::open_untrusted_below(d, "dump/../dump/toc.dat"),
                        Catch::Contains("not a plain file name"));
}

TEST_CASE("private folders are 0700 whatever the umask", "[safe_file]")
{
    TempDir dir;
    auto d = warden::fs::Dir::open(dir.path.string());
    {
        ScopedUmask open_umask(0);
        warden::fs::make_dirs((dir.path / "a" / "b").string());
        warden::fs::make_private_dir(d, "p");
    }
    {
        ScopedUmask tight_umask(0177);  // would leave a folder nobody can enter
        warden::fs::make_dirs((dir.path / "c").string());
    }
    REQUIRE(mode_of(dir.path / "c") == 0700);
    REQUIRE(mode_of(dir.path / "a") == 0700);
    REQUIRE(mode_of(dir.path / "a" / "b") == 0700);
    REQUIRE(mode_of(dir.path / "p") == 0700);
    REQUIRE_THROWS_WITH(warden::fs::make_private_dir(d, "p"), Catch::Contains("File exists"));
    REQUIRE_FALSE(warden::fs::try_make_private_dir(d, "p").has_value());
}

TEST_CASE("the catalog lists complete backups and names the unusable folders", "[catalog_files]")
{
    TempDir dir;
    stdfs::create_directory(dir.path / "20261123T030000Z");
    warden::write_description((dir.path / "20261123T030000Z").string(), sample("20261123T030000Z"));
    REQUIRE(mode_of(dir.path / "20261123T030000Z" / "backup.json") == 0600);
    stdfs::create_directory(dir.path / ".partial-20261123T040000Z");
    stdfs::create_directory(dir.path / "20261123T050000Z");  // no backup.json
    stdfs::create_directory(dir.path / "20261123T060000Z");
    std::ofstream(dir.path / "20261123T060000Z" / "backup.json") << "{\"format\": 1,";
    // A backup folder or backup.json that is a symlink is not followed.
    stdfs::create_directory_symlink(dir.path / "20261123T030000Z", dir.path / "20261123T070000Z");
    stdfs::create_directory(dir.path / "20261123T080000Z");
    stdfs::create_symlink(dir.path / "20261123T030000Z" / "backup.json",
                          dir.path / "20261123T080000Z" / "backup.json");

    warden::CatalogListing l = warden::load_catalog(dir.path.string());
    REQUIRE(l.backups.size() == 1);
    REQUIRE(l.backups[0].id == "20261123T030000Z");
    REQUIRE(l.unusable.size() == 5);
    REQUIRE(l.unusable[0].first == ".partial-20261123T040000Z");
    REQUIRE(l.unusable[3].second == "a symbolic link, not a backup folder");
    REQUIRE_THAT(l.unusable[4].second, Catch::Contains("symbolic link"));

    REQUIRE(warden::load_backup(dir.path.string(), "20261123T030000Z").label == "nightly");
    REQUIRE_THROWS_WITH(warden::load_backup(dir.path.string(), "20991231T000000Z"),
                        Catch::Contains("unknown backup ID"));
    REQUIRE_THROWS_WITH(warden::load_backup(dir.path.string(), "../x"),
                        Catch::Contains("unknown backup ID"));
    REQUIRE_THROWS_WITH(warden::load_backup(dir.path.string(), "20261123T070000Z"),
                        Catch::Contains("unknown backup ID"));
    REQUIRE_THROWS_AS(warden::load_catalog((dir.path / "missing").string()), Error);
}

TEST_CASE("backup.json is written through no planted temporary file", "[catalog_files]")
{
    TempDir dir;
    stdfs::path folder = dir.path / "20261123T030000Z";
    stdfs::create_directory(folder);
    std::ofstream(dir.path / "victim") << "secret\n";
    // The name the old writer used, and the final name, both planted.
    stdfs::create_symlink(dir.path / "victim", folder / "backup.json.tmp");
    stdfs::create_symlink(dir.path / "victim", folder / "backup.json");
    warden::write_description(folder.string(), sample("20261123T030000Z"));
    REQUIRE(slurp(dir.path / "victim") == "secret\n");
    REQUIRE_FALSE(stdfs::is_symlink(folder / "backup.json"));
    REQUIRE(warden::load_backup(dir.path.string(), "20261123T030000Z").id == "20261123T030000Z");
    // A backup folder replaced by a symlink is not written into.
    stdfs::create_directory(dir.path / "other");
    stdfs::create_directory_symlink(dir.path / "other", dir.path / "20261123T040000Z");
    REQUIRE_THROWS_WITH(warden::write_description((dir.path / "20261123T040000Z").string(),
                                                  sample("20261123T040000Z")),
                        Catch::Contains("symbolic link"));
    REQUIRE(stdfs::is_empty(dir.path / "other"));
}

TEST_CASE("a rename never replaces what is already there", "[safe_file]")
{
    TempDir dir;
    stdfs::create_directory(dir.path / ".partial-1");
    std::ofstream(dir.path / ".partial-1" / "new") << "new backup";
    // Empty: a plain rename(2) would replace it.
    stdfs::create_directory(dir.path / "1");
    auto d = warden::fs::Dir::open(dir.path.string());
    REQUIRE_THROWS_WITH(warden::fs::rename_in(d, ".partial-1", "1"), Catch::Contains("File exists"));
    REQUIRE(stdfs::is_empty(dir.path / "1"));
    REQUIRE(slurp(dir.path / ".partial-1" / "new") == "new backup");
    warden::fs::rename_in(d, ".partial-1", "2");
    REQUIRE(stdfs::is_directory(dir.path / "2"));
}
