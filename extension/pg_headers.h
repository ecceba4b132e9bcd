// Include PostgreSQL server headers from C++.
//
// Every C++ standard header must come before this one: PostgreSQL's port.h redefines
// printf, snprintf and friends as macros, which breaks <string> and fmt if they follow.
// Files that include this header are "PostgreSQL side": they may ereport, so they keep
// no object with a destructor alive across a call that can raise an error.
#pragma once

#define WARDEN_PG_SIDE 1

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
}
