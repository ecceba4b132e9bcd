// pg_warden's release version, shared by the utility and the extension.
#pragma once

namespace warden {
inline constexpr const char* kVersion = "1.2.0";
}
