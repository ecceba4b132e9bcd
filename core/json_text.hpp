// JSON for `--json` output and catalog files: always valid JSON, whatever bytes a file
// name, a server string or an error message carries.
//
// nlohmann::json refuses to dump a string that is not UTF-8 (type_error 316), which left
// `--json` commands printing nothing. Each byte that is not part of a valid UTF-8
// sequence is written as the four characters \xNN (hex) instead: unlike U+FFFD
// replacement, two different names stay distinguishable and the original bytes can be
// read back from the output. Valid text, backslashes included, is kept unchanged.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace warden {

// TEXT with every byte outside a valid UTF-8 sequence replaced by "\xNN".
std::string valid_utf8(std::string_view text);

// DOC serialized (indent as json::dump takes it) with every string and key made valid_utf8.
std::string json_text(const nlohmann::json& doc, int indent = 2);

}  // namespace warden
