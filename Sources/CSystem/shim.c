#define _GNU_SOURCE
#include "CSystem.h"
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

int csystem_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int control(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

int csystem_epoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
    return control(epfd, EPOLL_CTL_ADD, fd, events, token);
}

int csystem_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token) {
    return control(epfd, EPOLL_CTL_MOD, fd, events, token);
}

int csystem_epoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int csystem_epoll_wait(int epfd, csystem_event *events, int capacity, int timeout_ms) {
    struct epoll_event raw[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epfd, raw, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        events[i].token = raw[i].data.u64;
        events[i].events = raw[i].events;
    }
    return count;
}

int csystem_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int csystem_eventfd_signal(int fd) {
    uint64_t one = 1;
    return (int)write(fd, &one, sizeof one);
}

void csystem_eventfd_drain(int fd) {
    uint64_t value;
    while (read(fd, &value, sizeof value) > 0) {}
}

int csystem_accept(int fd, char *host, int host_capacity) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    int client = accept4(fd, (struct sockaddr *)&address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) return client;
    host[0] = 0;
    if (address.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&address)->sin_addr, host, (socklen_t)host_capacity);
    } else if (address.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&address)->sin6_addr, host, (socklen_t)host_capacity);
    }
    return client;
}

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *exit_when_readable(void *argument) {
    pthread_setname_np(pthread_self(), "hr-parent");
    struct pollfd parent = {.fd = (int)(intptr_t)argument, .events = POLLIN};
    while (poll(&parent, 1, -1) < 0 && errno == EINTR) {}
    _exit(137);
    return NULL;
}

int csystem_exit_with_parent(void) {
    pid_t parent = getppid();
    // Adopted already: the parent is gone.
    if (parent == 1) _exit(137);
    // The signal follows the thread that started this process, and alone it let a killed
    // test run leave relays behind; it stays for kernels without pidfd_open (before 5.3).
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    // The parent may have died before the call: then it is already gone.
    if (getppid() != parent) _exit(137);
    // A pidfd follows the parent process itself: it turns readable when that process ends,
    // however it ends.
    int fd = (int)syscall(SYS_pidfd_open, parent, 0);
    if (fd < 0) {
        if (errno == ESRCH) _exit(137);
        return 0;
    }
    pthread_attr_t attributes;
    pthread_t watcher;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    if (pthread_create(&watcher, &attributes, exit_when_readable, (void *)(intptr_t)fd) != 0) close(fd);
    pthread_attr_destroy(&attributes);
    return 0;
}

long csystem_random_bytes(void *buffer, unsigned long length) { return (long)getrandom(buffer, length, 0); }

void csystem_name_thread(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    pthread_setname_np(pthread_self(), shortened);
}

int csystem_keep_freed_memory(int bytes) {
    return mallopt(M_TRIM_THRESHOLD, bytes) == 1 && mallopt(M_MMAP_THRESHOLD, bytes) == 1;
}

int64_t csystem_unix_milliseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
