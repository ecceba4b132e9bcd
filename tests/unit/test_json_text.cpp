#include <catch2/catch.hpp>

#include "json_text.hpp"

using warden::json_text;
using warden::valid_utf8;

TEST_CASE("valid UTF-8 is kept as it is", "[json_text]")
{
    REQUIRE(valid_utf8("base.tar") == "base.tar");
    REQUIRE(valid_utf8("d\xC3\xA9j\xC3\xA0 \xE2\x82\xAC \xF0\x9F\x90\x98") ==
            "d\xC3\xA9j\xC3\xA0 \xE2\x82\xAC \xF0\x9F\x90\x98");
    REQUIRE(valid_utf8("a\\xFFb") == "a\\xFFb");
    REQUIRE(valid_utf8(std::string("\0", 1)) == std::string("\0", 1));
}

TEST_CASE("bytes outside UTF-8 become \\xNN", "[json_text]")
{
    REQUIRE(valid_utf8("base/\xFF\xFE.dat") == "base/\\xFF\\xFE.dat");
    REQUIRE(valid_utf8("caf\xE9") == "caf\\xE9");                   // Latin-1
    REQUIRE(valid_utf8("\xC0\xAF") == "\\xC0\\xAF");                // overlong '/'
    REQUIRE(valid_utf8("\xE0\x80\xAF") == "\\xE0\\x80\\xAF");       // overlong
    REQUIRE(valid_utf8("\xED\xA0\x80") == "\\xED\\xA0\\x80");       // surrogate
    REQUIRE(valid_utf8("\xF4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
    REQUIRE(valid_utf8("\xE2\x82") == "\\xE2\\x82");                // truncated
    REQUIRE(valid_utf8("\xE2\x82x") == "\\xE2\\x82x");
}

TEST_CASE("JSON text is produced whatever the strings hold", "[json_text]")
{
    nlohmann::json doc = {{"detail", "member \"\xFF.dat\" damaged"},
                          {"names", {"ok", "\xC3"}},
                          {"\xFE", 1}};
    REQUIRE_THROWS(doc.dump());
    std::string text = json_text(doc, -1);
    nlohmann::json back = nlohmann::json::parse(text);
    REQUIRE(back.at("detail") == "member \"\\xFF.dat\" damaged");
    REQUIRE(back.at("names").at(1) == "\\xC3");
    REQUIRE(back.at("\\xFE") == 1);
}
