// warden.checksum(text): the migration checksum rule, callable from SQL so that psql
// users can compute exactly what the utility computes.
#include "checksum_glue.hpp"
#include "bridge.h"

extern "C" {
#include "utils/builtins.h"
}

WARDEN_FUNCTION(warden_checksum)
{
    text* script = PG_GETARG_TEXT_PP(0);
    char hex[65];
    warden::glue::script_checksum(VARDATA_ANY(script), VARSIZE_ANY_EXHDR(script), hex);
    PG_RETURN_TEXT_P(cstring_to_text(hex));
}
