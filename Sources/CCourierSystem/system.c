#define _GNU_SOURCE
#include "courier_system.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>

void courier_name_thread(const char *name) { (void)prctl(PR_SET_NAME, name, 0, 0, 0); }

int courier_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int courier_wait_readable(int fd, int64_t timeout_ns) {
    struct pollfd item = { .fd = fd, .events = POLLIN, .revents = 0 };
    struct timespec timeout;
    if (timeout_ns >= 0) {
        timeout.tv_sec = (time_t)(timeout_ns / 1000000000);
        timeout.tv_nsec = (long)(timeout_ns % 1000000000);
    }
    int ready = ppoll(&item, 1, timeout_ns >= 0 ? &timeout : NULL, NULL);
    return ready < 0 ? -1 : (ready > 0 ? 1 : 0);
}
