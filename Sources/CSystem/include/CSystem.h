#ifndef HAPPYRELAY_CSYSTEM_H
#define HAPPYRELAY_CSYSTEM_H

#include <stdint.h>

// Glibc's Swift overlay does not export epoll or eventfd, and struct epoll_event is
// packed with a union, so the event loop goes through these small helpers.

enum {
    csystem_epollin = 0x001,
    csystem_epollout = 0x004,
    csystem_epollerr = 0x008,
    csystem_epollhup = 0x010,
    csystem_epollrdhup = 0x2000,
};

/// One readiness event: the registered token and the event bits.
typedef struct {
    uint64_t token;
    uint32_t events;
} csystem_event;

int csystem_epoll_create(void);
int csystem_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int csystem_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token);
int csystem_epoll_remove(int epfd, int fd);
/// Waits for events; returns the count, or -1 with errno set.
int csystem_epoll_wait(int epfd, csystem_event *events, int capacity, int timeout_ms);

/// The wall clock's Unix time in milliseconds (CLOCK_REALTIME): the one clock the HTTP layer
/// (request ids, the Date header) and the store, the relay and the CLI (their times) read.
int64_t csystem_unix_milliseconds(void);

int csystem_eventfd(void);
int csystem_eventfd_signal(int fd);
void csystem_eventfd_drain(int fd);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; writes the peer's address as text into host
/// (at least 46 bytes) and returns the new descriptor, or -1 with errno set.
int csystem_accept(int fd, char *host, int host_capacity);

/// Ends this process when its parent process ends: PR_SET_PDEATHSIG, and a thread
/// (`hr-parent`) waiting on a pidfd of the parent.
int csystem_exit_with_parent(void);

/// Names the calling thread for the kernel (`top -H`, `perf`, /proc/PID/task/TID/comm):
/// the first 15 bytes of `name`.
void csystem_name_thread(const char *name);

/// Sets glibc's trim and mmap thresholds (mallopt's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD)
/// to `bytes`; returns 1 when both were set.
int csystem_keep_freed_memory(int bytes);

/// Fills `buffer` with `length` bytes from the kernel's random generator (getrandom);
/// returns the count written, or -1 with errno set.
long csystem_random_bytes(void *buffer, unsigned long length);

#endif
