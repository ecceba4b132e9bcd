// Include this first in files that hold C++ objects and must never see a server header.
// Such a file can't call ereport, so nothing in it can longjmp over its destructors.
#pragma once

#ifdef WARDEN_PG_SIDE
#error "C++-side file includes a PostgreSQL server header; move the PostgreSQL calls to an adapter file"
#endif
#ifdef PG_VERSION_NUM
#error "C++-side file includes a PostgreSQL server header; move the PostgreSQL calls to an adapter file"
#endif
