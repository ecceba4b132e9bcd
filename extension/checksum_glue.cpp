#include "cxx_side.hpp"

#include "checksum_glue.hpp"

#include <cstring>

#include "../core/checksum.hpp"

namespace warden::glue {

void script_checksum(const char* data, std::size_t len, char out[65])
{
    std::string hex = warden::script_checksum(std::string_view(data, len));
    std::memcpy(out, hex.c_str(), 65);
}

}  // namespace warden::glue
