#include <catch2/catch.hpp>

#include "drill_account.hpp"

using warden::drill::choose_server_account;
using Kind = warden::drill::ServerAccount::Kind;

TEST_CASE("drill: without root the scratch server runs as warden does", "[drill]")
{
    auto a = choose_server_account(1000, "", 1000);
    REQUIRE(a.kind == Kind::current);
    // Even when someone else owns the backup folder: no switch is possible without root.
    REQUIRE(choose_server_account(1000, "", 0).kind == Kind::current);
    REQUIRE(choose_server_account(1000, "", 999).kind == Kind::current);
}

TEST_CASE("drill: as root the server runs as --os-user, else the backup folder's owner, else postgres",
          "[drill]")
{
    auto explicit_user = choose_server_account(0, "pgops", 114);
    REQUIRE(explicit_user.kind == Kind::named);
    REQUIRE(explicit_user.name == "pgops");

    auto owner = choose_server_account(0, "", 114);
    REQUIRE(owner.kind == Kind::uid);
    REQUIRE(owner.uid == 114);

    auto fallback = choose_server_account(0, "", 0);
    REQUIRE(fallback.kind == Kind::named);
    REQUIRE(fallback.name == "postgres");
    REQUIRE(fallback.why.find("root") != std::string::npos);
}

TEST_CASE("drill: --os-user without root is passed on for the caller to check", "[drill]")
{
    auto a = choose_server_account(1000, "postgres", 1000);
    REQUIRE(a.kind == Kind::named);
    REQUIRE(a.name == "postgres");
}
