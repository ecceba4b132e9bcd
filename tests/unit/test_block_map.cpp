#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "block_map.hpp"
#include "error.hpp"

using namespace warden;

namespace {
std::vector<unsigned char> page(Lsn lsn, std::uint16_t lower = 28, std::uint16_t upper = 8000)
{
    std::vector<unsigned char> p(kBlockSize, 0);
    std::uint32_t hi = static_cast<std::uint32_t>(lsn >> 32), lo = static_cast<std::uint32_t>(lsn);
    std::memcpy(p.data(), &hi, 4);
    std::memcpy(p.data() + 4, &lo, 4);
    std::uint16_t special = 8192, version = 8192 | 4;
    std::memcpy(p.data() + 12, &lower, 2);
    std::memcpy(p.data() + 14, &upper, 2);
    std::memcpy(p.data() + 16, &special, 2);
    std::memcpy(p.data() + 18, &version, 2);
    return p;
}
}  // namespace

TEST_CASE("only main forks of relations are copied block by block")
{
    CHECK(copy_mode_for("base/5/16384") == FileCopy::blocks);
    CHECK(copy_mode_for("base/5/16384.12") == FileCopy::blocks);
    CHECK(copy_mode_for("global/1262") == FileCopy::blocks);
    CHECK(copy_mode_for("pg_tblspc/16390/PG_15_202209061/5/16400") == FileCopy::blocks);
    CHECK(copy_mode_for("base/5/16384_fsm") == FileCopy::whole);
    CHECK(copy_mode_for("base/5/16384_vm") == FileCopy::whole);
    CHECK(copy_mode_for("base/5/16384_init") == FileCopy::whole);
    CHECK(copy_mode_for("base/5/PG_VERSION") == FileCopy::whole);
    CHECK(copy_mode_for("global/pg_control") == FileCopy::whole);
    CHECK(copy_mode_for("global/pg_filenode.map") == FileCopy::whole);
    CHECK(copy_mode_for("pg_xact/0000") == FileCopy::whole);
    CHECK(copy_mode_for("pg_wal/000000010000000000000003") == FileCopy::whole);
    CHECK(copy_mode_for("base/5/16384.") == FileCopy::whole);
    CHECK(copy_mode_for("base/x/16384") == FileCopy::whole);
    CHECK(copy_mode_for("pg_tblspc/16390/PG_15_202209061/5/16400_vm") == FileCopy::whole);
}

TEST_CASE("a block is stored when it changed at or after the parent's start")
{
    Lsn start = 0x100000028;
    auto old_page = page(start - 1);
    auto new_page = page(start);
    CHECK_FALSE(block_changed(old_page.data(), kBlockSize, 3, 10, start));
    CHECK(block_changed(new_page.data(), kBlockSize, 3, 10, start));
    CHECK(page_lsn(new_page.data()) == start);
    SECTION("beyond the parent's copy: always")
    {
        CHECK(block_changed(old_page.data(), kBlockSize, 10, 10, start));
    }
    SECTION("a partial block: always")
    {
        CHECK(block_changed(old_page.data(), 4096, 3, 10, start));
    }
    SECTION("a new (zero) page: always, it may replace older contents after a truncation")
    {
        std::vector<unsigned char> zero(kBlockSize, 0);
        CHECK(block_changed(zero.data(), kBlockSize, 3, 10, start));
    }
    SECTION("a page whose header is not valid: always")
    {
        auto bad = page(start - 1, 28, 8000);
        bad[18] = 0x01;  // another page size / layout version
        CHECK(block_changed(bad.data(), kBlockSize, 3, 10, start));
        auto upside = page(start - 1, 9000, 8000);
        CHECK(block_changed(upside.data(), kBlockSize, 3, 10, start));
    }
}

TEST_CASE("block maps round-trip and refuse what restore could not use")
{
    BlockMap m;
    m.parent = "20261205T070000Z";
    m.parent_start_lsn = "0/3000028";
    m.files.push_back({"base/5/16384", 3 * kBlockSize, {0, 2}, {std::string(64, 'a'), std::string(64, 'b')}});
    BlockMap back = block_map_from_json(block_map_to_json(m));
    REQUIRE(back.files.size() == 1);
    CHECK(back.parent == m.parent);
    CHECK(back.find("base/5/16384")->blocks == std::vector<std::uint64_t>{0, 2});
    CHECK(back.find("base/5/16384")->sha256[1] == std::string(64, 'b'));
    CHECK(back.find("base/5/16385") == nullptr);

    auto refuses = [](BlockMap bad, const std::string& what) {
        CHECK_THROWS_WITH(block_map_from_json(block_map_to_json(bad)), Catch::Contains(what));
    };
    BlockMap beyond = m;
    beyond.files[0].size = 2 * kBlockSize;
    refuses(beyond, "beyond");
    BlockMap unsorted = m;
    unsorted.files[0].blocks = {2, 0};
    refuses(unsorted, "out of order");
    BlockMap escaping = m;
    escaping.files[0].path = "../base/5/16384";
    refuses(escaping, "..");
    BlockMap fork = m;
    fork.files[0].path = "base/5/16384_vm";
    refuses(fork, "not a relation's main fork");
    BlockMap twice = m;
    twice.files.push_back(m.files[0]);
    refuses(twice, "twice");
    CHECK_THROWS(block_map_from_json("{\"format\": 2}"));
}

TEST_CASE("block member names")
{
    std::size_t f = 0;
    std::uint64_t b = 0;
    CHECK(block_member_name(3, 17) == "3/17");
    CHECK(parse_block_member_name("3/17", f, b));
    CHECK(f == 3);
    CHECK(b == 17);
    CHECK_FALSE(parse_block_member_name("3/x", f, b));
    CHECK_FALSE(parse_block_member_name("03/1", f, b));
    CHECK_FALSE(parse_block_member_name("../1", f, b));
    CHECK_FALSE(parse_block_member_name("3", f, b));
}
