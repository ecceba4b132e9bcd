// Defines the warden.* settings and reserves the prefix, so a typo such as
// SET warden.maintenance_naptme is an error instead of a silently ignored placeholder.
#include "settings.h"

extern "C" {
#include "utils/guc.h"
}

void warden_define_settings(void)
{
    MarkGUCPrefixReserved("warden");
}
