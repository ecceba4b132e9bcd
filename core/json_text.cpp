#include "json_text.hpp"

namespace warden {

namespace {
// The length of the valid UTF-8 sequence starting at s[i], or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
std::size_t sequence_length(std::string_view s, std::size_t i)
{
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80)
        return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi)
        return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF)
            return 0;
    return n;
}

nlohmann::json with_valid_strings(const nlohmann::json& doc)
{
    if (doc.is_string())
        return valid_utf8(doc.get_ref<const std::string&>());
    if (doc.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& v : doc)
            out.push_back(with_valid_strings(v));
        return out;
    }
    if (doc.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (auto it = doc.begin(); it != doc.end(); ++it)
            out[valid_utf8(it.key())] = with_valid_strings(it.value());
        return out;
    }
    return doc;
}
}  // namespace

std::string valid_utf8(std::string_view text)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        if (std::size_t n = sequence_length(text, i)) {
            out.append(text.substr(i, n));
            i += n;
            continue;
        }
        auto c = static_cast<unsigned char>(text[i++]);
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::string json_text(const nlohmann::json& doc, int indent)
{
    return with_valid_strings(doc).dump(indent);
}

}  // namespace warden
