#ifndef COURIER_SYSTEM_H
#define COURIER_SYSTEM_H
// The Linux calls Swift cannot reach directly (prctl is variadic; eventfd and ppoll are not
// in every libc module map). Linux only, like the rest of the package (README, Package.swift).

#include <stdint.h>

/// Names the calling thread (shown by top -H, gdb, perf and /proc); at most 15 bytes are kept.
void courier_name_thread(const char *name);

/// A non-blocking, close-on-exec eventfd with the counter at 0; -1 with errno on failure.
int courier_eventfd(void);

/// Waits until `fd` is readable or `timeout_ns` nanoseconds pass (negative: no limit).
/// Returns 1 when readable, 0 on timeout, -1 with errno on failure (EINTR included).
int courier_wait_readable(int fd, int64_t timeout_ns);

#endif
