#include <catch2/catch.hpp>

#include "checksum.hpp"

using warden::script_checksum;

TEST_CASE("checksum is lowercase hex SHA-256 of the bytes", "[checksum]")
{
    // Known answer: SHA-256("abc").
    REQUIRE(script_checksum("abc") ==
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    REQUIRE(script_checksum("") ==
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("CRLF, lone CR and LF files give the same checksum", "[checksum]")
{
    const std::string lf = "CREATE TABLE t (id int);\nSELECT 1;\n";
    REQUIRE(script_checksum("CREATE TABLE t (id int);\r\nSELECT 1;\r\n") == script_checksum(lf));
    REQUIRE(script_checksum("CREATE TABLE t (id int);\rSELECT 1;\r") == script_checksum(lf));
    REQUIRE(script_checksum("CREATE TABLE t (id int);\r\nSELECT 1;\r") == script_checksum(lf));
}

TEST_CASE("a UTF-8 byte-order mark is ignored", "[checksum]")
{
    REQUIRE(script_checksum("\xEF\xBB\xBFSELECT 1;\n") == script_checksum("SELECT 1;\n"));
    // Only at the start: a BOM in the middle is content.
    REQUIRE(script_checksum("SELECT 1;\xEF\xBB\xBF\n") != script_checksum("SELECT 1;\n"));
}

TEST_CASE("any other change gives another checksum", "[checksum]")
{
    const std::string base = "SELECT 1;\n";
    REQUIRE(script_checksum("SELECT 2;\n") != script_checksum(base));
    REQUIRE(script_checksum("SELECT 1; \n") != script_checksum(base));  // trailing space
    REQUIRE(script_checksum("SELECT 1;") != script_checksum(base));     // final newline
    REQUIRE(script_checksum("\n\nSELECT 1;\n") != script_checksum(base));
}

TEST_CASE("streamed normalisation equals normalise-then-hash", "[checksum]")
{
    const std::string text = "\xEF\xBB\xBF" "a\r\nb\rc\n\r\r\nd";
    REQUIRE(warden::normalize_script(text) == "a\nb\nc\n\n\nd");
    REQUIRE(script_checksum(text) == warden::sha256_hex(warden::normalize_script(text)));
}

TEST_CASE("incremental SHA-256 matches one-shot", "[checksum]")
{
    warden::Sha256 h;
    h.update("ab", 2);
    h.update("c", 1);
    REQUIRE(h.hex_digest() == warden::sha256_hex("abc"));
}
