#include <sqlite3.h>

/// Turns off SQLite's memory statistics, which take a mutex shared by every connection around
/// each of SQLite's allocations (2.4 % of an async relay's CPU). sqlite3_config is variadic,
/// which Swift cannot call; it must run before SQLite initialises (the first open), and
/// returns SQLITE_MISUSE after.
static inline int csqlite_disable_memory_statistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
