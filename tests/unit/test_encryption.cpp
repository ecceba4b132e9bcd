#include <algorithm>
#include <cstring>

#include <catch2/catch.hpp>

#include "encryption.hpp"
#include "error.hpp"

using namespace warden;

namespace {
// Seals PARTS into one file image.
std::string sealed(const std::string& secret, const std::vector<std::string>& parts)
{
    FileSealer s(secret);
    std::string file = s.header();
    for (std::size_t i = 0; i < parts.size(); ++i)
        file += s.seal(parts[i], i + 1 == parts.size());
    return file;
}

// Opens a file image segment by segment.
std::string opened(const std::string& secret, const std::string& file)
{
    FileOpener o(secret, std::string_view(file).substr(0, kEncryptedHeaderSize));
    std::string out;
    std::size_t pos = kEncryptedHeaderSize;
    while (pos < file.size()) {
        bool last = false;
        std::uint32_t len = FileOpener::segment_length(reinterpret_cast<const unsigned char*>(file.data()) + pos, last);
        out += o.open(std::string_view(file).substr(pos, kSegmentOverhead + len));
        pos += kSegmentOverhead + len;
    }
    if (!o.finished())
        throw Error("XX001", "truncated");
    return out;
}
}  // namespace

TEST_CASE("encrypted files open with the right key only")
{
    std::string file = sealed("correct horse", {"first part ", "second part", ""});
    CHECK(looks_encrypted(file));
    CHECK(file.find("first part") == std::string::npos);
    CHECK(opened("correct horse", file) == "first part second part");
    CHECK_THROWS_WITH(opened("wrong horse", file), Catch::Contains("does not authenticate"));
}

TEST_CASE("a changed, dropped or reordered segment is detected")
{
    std::string file = sealed("k", {"aaaa", "bbbb", "cccc"});
    std::size_t seg = kSegmentOverhead + 4;
    SECTION("a flipped byte")
    {
        file[kEncryptedHeaderSize + 6] ^= 1;
        CHECK_THROWS_WITH(opened("k", file), Catch::Contains("segment 0 does not authenticate"));
    }
    SECTION("a flipped header byte")
    {
        file[10] ^= 1;
        CHECK_THROWS(opened("k", file));
    }
    SECTION("the last segment dropped")
    {
        CHECK_THROWS_WITH(opened("k", file.substr(0, file.size() - seg)), Catch::Contains("truncated"));
    }
    SECTION("two segments swapped")
    {
        std::string a = file.substr(kEncryptedHeaderSize, seg), b = file.substr(kEncryptedHeaderSize + seg, seg);
        file.replace(kEncryptedHeaderSize, seg, b);
        file.replace(kEncryptedHeaderSize + seg, seg, a);
        CHECK_THROWS_WITH(opened("k", file), Catch::Contains("does not authenticate"));
    }
    SECTION("two files of the same key differ (fresh salt and nonce)")
    {
        CHECK(sealed("k", {"aaaa"}) != sealed("k", {"aaaa"}));
    }
}

TEST_CASE("key checks tell keys apart")
{
    std::string salt = random_hex(16);
    CHECK(key_check("one", salt) == key_check("one", salt));
    CHECK(key_check("one", salt) != key_check("two", salt));
    CHECK(key_check("one", salt) != key_check("one", random_hex(16)));
}

TEST_CASE("whole buffers seal in segments and open within a limit")
{
    std::string plain(kBufferSegment * 2 + 5, 'w');
    std::string file = seal_buffer("k", plain);
    CHECK(file.size() <= sealed_size_bound(plain.size()));
    CHECK(open_buffer("k", file, plain.size()) == plain);
    CHECK(open_buffer("k", seal_buffer("k", ""), 10).empty());
    CHECK_THROWS_WITH(open_buffer("k", file, plain.size() - 1), Catch::Contains("more than"));
    CHECK_THROWS_WITH(open_buffer("other", file, plain.size()), Catch::Contains("does not authenticate"));
    std::string cut = file.substr(0, file.size() - 1);
    CHECK_THROWS_WITH(open_buffer("k", cut, plain.size()), Catch::Contains("truncated"));
    CHECK_THROWS_WITH(open_buffer("k", file + "x", plain.size()), Catch::Contains("after the last"));
    file[kEncryptedHeaderSize + kSegmentOverhead + kBufferSegment + 100] ^= 1;
    CHECK_THROWS_WITH(open_buffer("k", file, plain.size()), Catch::Contains("segment 1 does not authenticate"));
}

TEST_CASE("a WAL archive's keys depend on the secret and the salt")
{
    std::string salt = random_hex(16);
    auto a = archive_keys("k", salt);
    CHECK(a.key_check == archive_keys("k", salt).key_check);
    CHECK(a.key_check != archive_keys("k2", salt).key_check);
    CHECK(a.key_check != archive_keys("k", random_hex(16)).key_check);
    CHECK(a.mac_key.size() == 32);
    CHECK(hmac_sha256_hex(a.mac_key, "x") != hmac_sha256_hex(archive_keys("k2", salt).mac_key, "x"));
}

// FileOpener::next, as the readers of sealed backup files and dumps use it.
std::string read_all(const std::string& secret, const std::string& file)
{
    FileOpener o(secret, std::string_view(file).substr(0, kEncryptedHeaderSize));
    std::size_t pos = kEncryptedHeaderSize;
    auto read = [&](char* p, std::size_t n) {
        std::size_t k = std::min(n, file.size() - pos);
        std::memcpy(p, file.data() + pos, k);
        pos += k;
        return k;
    };
    std::string out, plain;
    while (o.next(read, plain))
        out += plain;
    return out;
}

TEST_CASE("a sealed file read segment by segment from a stream")
{
    std::string file = sealed("k", {"first", "", "third part"});
    CHECK(read_all("k", file) == "firstthird part");
    CHECK_THROWS_WITH(read_all("k", file + "x"), Catch::Contains("after the last"));
    CHECK_THROWS_WITH(read_all("k", file.substr(0, file.size() - 1)), Catch::Contains("cut short"));
    std::string two = sealed("k", {"first", "second"});
    std::string first_only = two.substr(0, kEncryptedHeaderSize + kSegmentOverhead + 5);
    CHECK_THROWS_WITH(read_all("k", first_only), Catch::Contains("segment is missing"));
    CHECK_THROWS_WITH(read_all("other", file), Catch::Contains("does not authenticate"));
}
