#include "cxx_side.hpp"

#include "ledger_glue.hpp"

#include <string_view>

#include "../core/migration_files.hpp"

namespace warden::glue {

bool script_no_transaction(const char* data, std::size_t len, const char* label)
{
    return warden::parse_directives(std::string_view(data, len), label).no_transaction;
}

}  // namespace warden::glue
