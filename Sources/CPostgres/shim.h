// libpq's header, for its types and constants only: the relay does not link libpq but opens
// it when a PostgreSQL store is first used (RelayStore/LibPQ.swift).
#if __has_include(<postgresql/libpq-fe.h>)
#include <postgresql/libpq-fe.h>
#else
#include <libpq-fe.h>
#endif
