#include <sqlite3.h>

/// Turns off SQLite's memory statistics, which take a mutex shared by every connection around
/// each of SQLite's allocations (2.4 % of an async relay's CPU). sqlite3_config is variadic,
/// which Swift cannot call; it must run before SQLite initialises (the first open), and
/// returns SQLITE_MISUSE after.
static inline int csqlite_disable_memory_statistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

/// Turns SQLite's defensive mode on or off for one connection (sqlite3_db_config is variadic
/// too). Some builds of SQLite turn it on by default; it forbids writing the schema table.
static inline int csqlite_set_defensive(sqlite3 *db, int on) { return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, (int *)0); }
