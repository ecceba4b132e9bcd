#include "cxx_side.hpp"

#include "ledger_plan_glue.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../core/migration_files.hpp"
#include "../core/migration_risk.hpp"

namespace warden::glue {

namespace {

char* malloc_copy(const std::string& s)
{
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (out == nullptr)
        throw std::bad_alloc();
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

}  // namespace

char* classify_plan(const char* facts, std::size_t len)
{
    return malloc_copy(warden::risk::classify_text(std::string(facts, len)));
}

char* script_allowances(const char* data, std::size_t len, const char* label, bool* no_transaction)
{
    auto d = warden::parse_directives(std::string_view(data, len), label);
    *no_transaction = d.no_transaction;
    return malloc_copy(nlohmann::json(d.allow).dump());
}

}  // namespace warden::glue
