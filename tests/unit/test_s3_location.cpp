#include <catch2/catch.hpp>

#include <map>

#include "error.hpp"
#include "s3_location.hpp"

using namespace warden::s3;

namespace {
EnvLookup env_of(std::map<std::string, std::string> vars)
{
    return [vars](const std::string& k) -> std::optional<std::string> {
        auto it = vars.find(k);
        if (it == vars.end())
            return std::nullopt;
        return it->second;
    };
}

Settings resolve(std::map<std::string, std::string> vars, std::optional<std::string> cred = std::nullopt,
                 std::optional<std::string> conf = std::nullopt)
{
    return resolve_settings(env_of(std::move(vars)), cred, "~/.aws/credentials", conf, "~/.aws/config");
}
}  // namespace

TEST_CASE("s3 URLs name a bucket and a prefix", "[s3]")
{
    REQUIRE(is_s3_url("s3://b/x"));
    REQUIRE_FALSE(is_s3_url("/var/backups"));
    REQUIRE_FALSE(is_s3_url("S3:/b"));
    auto l = parse_url("s3://my-bucket/fleet/db1/");
    REQUIRE(l.bucket == "my-bucket");
    REQUIRE(l.prefix == "fleet/db1");
    REQUIRE(l.key("wal/x") == "fleet/db1/wal/x");
    REQUIRE(l.url() == "s3://my-bucket/fleet/db1");
    auto bare = parse_url("s3://bucket");
    REQUIRE(bare.prefix.empty());
    REQUIRE(bare.key("a") == "a");
}

TEST_CASE("malformed s3 URLs are refused with a reason", "[s3]")
{
    REQUIRE_THROWS_AS(parse_url("s3://"), warden::Error);
    REQUIRE_THROWS_AS(parse_url("s3:///prefix"), warden::Error);
    REQUIRE_THROWS_AS(parse_url("s3://Upper/x"), warden::Error);
    REQUIRE_THROWS_AS(parse_url("s3://ab/x"), warden::Error);
    REQUIRE_THROWS_AS(parse_url("s3://bucket/a//b"), warden::Error);
    REQUIRE_THROWS_AS(parse_url("s3://bucket/a/../b"), warden::Error);
    REQUIRE_THROWS_AS(parse_url("s3://bucket/a/\n"), warden::Error);
    REQUIRE_THROWS_WITH(parse_url("s3://-bad-/x"), Catch::Contains("not a valid bucket name"));
}

TEST_CASE("credentials and endpoint from the environment", "[s3]")
{
    auto s = resolve({{"AWS_ACCESS_KEY_ID", "AK"},
                      {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                      {"AWS_ENDPOINT_URL", "http://127.0.0.1:8000/"},
                      {"AWS_REGION", "default"}});
    REQUIRE(s.access_key == "AK");
    REQUIRE(s.secret_key == "SECRET");
    REQUIRE(s.endpoint == "http://127.0.0.1:8000");
    REQUIRE(s.region == "default");
    REQUIRE(s.path_style);  // a custom endpoint (Ceph, MinIO) is path-style
    REQUIRE(s.credentials_from == "environment");
    REQUIRE(object_url(s, "b", "p/k 1", "") == "http://127.0.0.1:8000/b/p/k%201");
}

TEST_CASE("AWS itself: regional endpoint, virtual-hosted addressing", "[s3]")
{
    auto s = resolve({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "S"}, {"AWS_DEFAULT_REGION", "eu-west-1"}});
    REQUIRE(s.endpoint == "https://s3.eu-west-1.amazonaws.com");
    REQUIRE_FALSE(s.path_style);
    REQUIRE(object_url(s, "b", "k", "x=1") == "https://b.s3.eu-west-1.amazonaws.com/k?x=1");
    auto p = resolve({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "S"}, {"AWS_S3_ADDRESSING_STYLE", "path"}});
    REQUIRE(p.path_style);
    REQUIRE(p.region == "us-east-1");
}

TEST_CASE("credentials from the shared files, by profile", "[s3]")
{
    std::string cred = "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n"
                       "# comment\n[backup]\naws_access_key_id=B\naws_secret_access_key=BS\naws_session_token = T\n";
    std::string conf = "[profile backup]\nregion = eu-central-1\nendpoint_url = https://minio.example:9000\n"
                       "addressing_style = path\n";
    auto d = resolve({}, cred, conf);
    REQUIRE(d.access_key == "D");
    REQUIRE(d.credentials_from == "~/.aws/credentials [default]");
    auto b = resolve({{"AWS_PROFILE", "backup"}}, cred, conf);
    REQUIRE(b.access_key == "B");
    REQUIRE(b.session_token == "T");
    REQUIRE(b.region == "eu-central-1");
    REQUIRE(b.endpoint == "https://minio.example:9000");
    REQUIRE(b.path_style);
    // The environment wins over the files.
    auto e = resolve({{"AWS_ACCESS_KEY_ID", "E"}, {"AWS_SECRET_ACCESS_KEY", "ES"}}, cred, conf);
    REQUIRE(e.access_key == "E");
}

TEST_CASE("missing or half credentials and bad endpoints are errors without secrets", "[s3]")
{
    REQUIRE_THROWS_WITH(resolve({}), Catch::Contains("no S3 credentials"));
    REQUIRE_THROWS_WITH(resolve({{"AWS_SECRET_ACCESS_KEY", "TOPSECRET"}}),
                        !Catch::Contains("TOPSECRET") && Catch::Contains("must be set together"));
    REQUIRE_THROWS_WITH(resolve({{"AWS_ACCESS_KEY_ID", "A"}, {"AWS_SECRET_ACCESS_KEY", "S"},
                                 {"AWS_ENDPOINT_URL", "ftp://x"}}),
                        Catch::Contains("not an http"));
    REQUIRE_THROWS_AS(resolve({{"AWS_ACCESS_KEY_ID", "A"}, {"AWS_SECRET_ACCESS_KEY", "S"},
                               {"AWS_ENDPOINT_URL", "http://user:pw@host"}}),
                      warden::Error);
    REQUIRE_THROWS_AS(resolve({{"AWS_ACCESS_KEY_ID", "A"}, {"AWS_SECRET_ACCESS_KEY", "S"},
                               {"AWS_S3_ADDRESSING_STYLE", "sideways"}}),
                      warden::Error);
}

TEST_CASE("SigV4 canonical query: sorted, encoded, name=value", "[s3]")
{
    REQUIRE(canonical_query({{"prefix", "a/b c"}, {"list-type", "2"}}) == "list-type=2&prefix=a%2Fb%20c");
    REQUIRE(canonical_query({{"uploads", ""}}) == "uploads=");
    REQUIRE(uri_encode("a/b~c_d.e-f", false) == "a/b~c_d.e-f");
    REQUIRE(uri_encode("a/b", true) == "a%2Fb");
}
