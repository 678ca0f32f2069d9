// sync-floor: the latency floor of the pipeline SPEC §4 asks for under group commit, with
// nothing else in it. See tools/sync-floor (which builds and runs this) and
// docs/PERFORMANCE.md, item 11.
//
// Two processes over TCP on 127.0.0.1, in C, no ZeroMQ, no framing beyond a 16-byte
// header, no application:
//   sender   a pacing thread releases messages on a constant-rate schedule every --tick-us;
//            a writer thread takes everything released, appends RECORD bytes per message
//            to its log with pwrite, fdatasyncs, and sends PAYLOAD bytes per message;
//            an acknowledgement thread reads cumulative acknowledgements.
//   receiver one thread reads whatever has arrived, appends a 16-byte mark to its log,
//            fdatasyncs and acknowledges everything it read.
// Latency: from each message's intended send time (coordinated omission corrected) to the
// sender reading the acknowledgement that covers it, in microsecond buckets.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { RECORD = 140, PAYLOAD = 100, MAX_BATCH = 65536, BUCKETS = 2000000 };

static struct {
    double rate, seconds, warmup;
    long tick_us;
    int sync;
    long long prewrite;
} opt = {.rate = 100000, .seconds = 4.5, .warmup = 0.5, .tick_us = 200, .sync = 1};

struct sync_stats { uint64_t count, over1, over2, over5, max_us; };

static void die(const char *what) { perror(what); exit(1); }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {.tv_sec = t / 1000000000u, .tv_nsec = t % 1000000000u};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static void write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; die("write"); }
        p += w; n -= (size_t)w;
    }
}

static int read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r == 0) return 0;
        if (r < 0) { if (errno == EINTR) continue; die("read"); }
        p += r; n -= (size_t)r;
    }
    return 1;
}

// Opens the log; with --prewrite, fills it with that many zero bytes and syncs first, so
// that the run overwrites blocks that already exist instead of appending.
static int open_log(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open");
    if (opt.prewrite > 0) {
        static char zeros[1 << 20];
        for (long long at = 0; at < opt.prewrite; at += sizeof zeros)
            if (pwrite(fd, zeros, sizeof zeros, at) != (ssize_t)sizeof zeros) die("pwrite");
        if (fsync(fd) != 0) die("fsync");
    }
    return fd;
}

static void timed_sync(int fd, struct sync_stats *s) {
    if (!opt.sync) return;
    uint64_t began = now_ns();
    if (fdatasync(fd) != 0) die("fdatasync");
    uint64_t us = (now_ns() - began) / 1000;
    s->count++;
    if (us > 1000) s->over1++;
    if (us > 2000) s->over2++;
    if (us > 5000) s->over5++;
    if (us > s->max_us) s->max_us = us;
}

static void print_syncs(const char *who, const struct sync_stats *s) {
    printf("%s_syncs=%llu %s_syncs_over_1ms=%llu %s_syncs_over_2ms=%llu %s_syncs_over_5ms=%llu %s_sync_max_ms=%.2f\n",
           who, (unsigned long long)s->count, who, (unsigned long long)s->over1, who, (unsigned long long)s->over2,
           who, (unsigned long long)s->over5, who, s->max_us / 1000.0);
}

// MARK: receiver

static int receive(int port, const char *path) {
    int log = open_log(path);
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) die("bind");
    if (listen(listener, 1) != 0) die("listen");
    printf("ready\n");
    fflush(stdout);
    int s = accept(listener, NULL, NULL);
    if (s < 0) die("accept");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char buf[1 << 24];
    char mark[16] = {0};
    size_t have = 0;
    off_t end = 0;
    struct sync_stats stats = {0};
    for (;;) {
        ssize_t r = read(s, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        have += (size_t)r;
        size_t at = 0;
        uint64_t covered = 0;
        int complete = 0;
        while (have - at >= 16) {
            uint64_t head[2];
            memcpy(head, buf + at, 16);
            size_t length = 16 + head[1] * PAYLOAD;
            if (have - at < length) break;
            at += length;
            covered = head[0] + head[1];
            complete = 1;
        }
        memmove(buf, buf + at, have - at);
        have -= at;
        if (!complete) continue;
        if (pwrite(log, mark, sizeof mark, end) != (ssize_t)sizeof mark) die("pwrite");
        end += sizeof mark;
        timed_sync(log, &stats);
        write_all(s, &covered, sizeof covered);
    }
    print_syncs("receiver", &stats);
    return 0;
}

// MARK: sender

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released_changed = PTHREAD_COND_INITIALIZER;
static uint64_t released, total, start_ns, counted;
static int sock, send_log;
static struct sync_stats send_stats;
static uint64_t histogram[BUCKETS];

static uint64_t intended(uint64_t i) { return start_ns + (uint64_t)((double)i * 1e9 / opt.rate); }

static void *pacer(void *unused) {
    (void)unused;
    uint64_t next = start_ns;
    sleep_until(start_ns);
    for (;;) {
        uint64_t due = (uint64_t)((double)(now_ns() - start_ns) * opt.rate / 1e9) + 1;
        if (due > total) due = total;
        pthread_mutex_lock(&lock);
        if (due > released) { released = due; pthread_cond_signal(&released_changed); }
        pthread_mutex_unlock(&lock);
        if (due >= total) return NULL;
        next += (uint64_t)opt.tick_us * 1000;
        sleep_until(next);
    }
}

static void *writer(void *unused) {
    (void)unused;
    static char records[RECORD * MAX_BATCH], frame[16 + PAYLOAD * MAX_BATCH];
    off_t end = 0;
    uint64_t sent = 0;
    while (sent < total) {
        pthread_mutex_lock(&lock);
        while (released == sent) pthread_cond_wait(&released_changed, &lock);
        uint64_t upTo = released;
        pthread_mutex_unlock(&lock);
        while (sent < upTo) {
            uint64_t n = upTo - sent > MAX_BATCH ? MAX_BATCH : upTo - sent;
            if (pwrite(send_log, records, n * RECORD, end) != (ssize_t)(n * RECORD)) die("pwrite");
            end += (off_t)(n * RECORD);
            timed_sync(send_log, &send_stats);
            uint64_t head[2] = {sent, n};
            memcpy(frame, head, sizeof head);
            write_all(sock, frame, 16 + n * PAYLOAD);
            sent += n;
        }
    }
    return NULL;
}

static void *acknowledgements(void *unused) {
    (void)unused;
    uint64_t acknowledged = 0, warmup = (uint64_t)(opt.warmup * 1e9);
    while (acknowledged < total) {
        uint64_t upTo;
        if (!read_all(sock, &upTo, sizeof upTo)) { fprintf(stderr, "sync-floor: the receiver closed the connection\n"); exit(1); }
        uint64_t now = now_ns();
        for (uint64_t i = acknowledged; i < upTo; i++) {
            uint64_t when = intended(i);
            if (when - start_ns < warmup) continue;
            uint64_t us = (now - when) / 1000;
            histogram[us < BUCKETS ? us : BUCKETS - 1]++;
            counted++;
        }
        acknowledged = upTo;
    }
    return NULL;
}

static double percentile(double p) {
    uint64_t seen = 0, target = (uint64_t)(p * (double)counted);
    for (long i = 0; i < BUCKETS; i++) {
        seen += histogram[i];
        if (seen > target || seen == counted) return i / 1000.0;
    }
    return -1;
}

static int send_messages(int port, const char *path) {
    total = (uint64_t)(opt.rate * (opt.seconds + opt.warmup));
    send_log = open_log(path);
    sock = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int attempt = 0; connect(sock, (struct sockaddr *)&address, sizeof address) != 0; attempt++) {
        if (attempt > 250) die("connect");
        usleep(20000);
    }
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    start_ns = now_ns() + 10000000;
    pthread_t threads[3];
    pthread_create(&threads[0], NULL, pacer, NULL);
    pthread_create(&threads[1], NULL, writer, NULL);
    pthread_create(&threads[2], NULL, acknowledgements, NULL);
    pthread_join(threads[2], NULL);
    pthread_join(threads[1], NULL);
    pthread_join(threads[0], NULL);
    printf("rate=%.0f messages=%llu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n", opt.rate,
           (unsigned long long)counted, percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999), percentile(1.0));
    print_syncs("sender", &send_stats);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[1], "send") != 0 && strcmp(argv[1], "receive") != 0)) {
        fprintf(stderr, "usage: sync-floor receive|send PORT FILE [--rate N] [--seconds S] [--warmup S] "
                        "[--tick-us N] [--no-sync] [--prewrite BYTES]\n");
        return 2;
    }
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-sync")) { opt.sync = 0; continue; }
        if (!v) { fprintf(stderr, "sync-floor: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--rate")) opt.rate = atof(v);
        else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
        else if (!strcmp(a, "--warmup")) opt.warmup = atof(v);
        else if (!strcmp(a, "--tick-us")) opt.tick_us = atol(v);
        else if (!strcmp(a, "--prewrite")) opt.prewrite = atoll(v);
        else { fprintf(stderr, "sync-floor: unknown option %s\n", a); return 2; }
        i++;
    }
    if (opt.rate <= 0 || opt.seconds <= 0 || opt.tick_us <= 0) { fprintf(stderr, "sync-floor: rate, seconds and tick must be positive\n"); return 2; }
    int port = atoi(argv[2]);
    return strcmp(argv[1], "receive") == 0 ? receive(port, argv[3]) : send_messages(port, argv[3]);
}
