/*
 * Load generator for `npm run bench` (scripts/bench.mjs builds it with cc). One epoll loop per
 * thread, non-blocking sockets, one request per connection as EPMD clients do. Every run is
 * bounded in time and in count. Arguments are key=value; one JSON line goes to stdout.
 *
 *   loadgen req    port= src= threads= conc= seconds= max= (req=HEX | lookup=PREFIX:COUNT) expect=HEX [minlen=]
 *       connect, send, read until the server closes; checks the reply's first bytes and length.
 *   loadgen churn  port= src= threads= conc= seconds= max=
 *       ALIVE2 with a fresh name, read the reply, close (one registration and unregistration).
 *   loadgen hold   port= src= regs= idle= [first=]
 *       registers node<first>..node<first+regs-1> and opens idle connections, prints "ready", holds them
 *       until stdin closes.
 *   loadgen startup port= notify=0|1 -- COMMAND...
 *       time from fork+exec to the port accepting, and to READY=1 on NOTIFY_SOCKET.
 *
 * Source addresses: each thread connects from its own 127.x.y.z addresses and moves on to the next
 * one every ROTATE connections, so that the TIME_WAIT entries the server leaves behind (it closes
 * first) never collide with a reused client port.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define ROTATE 4000
#define MAX_LAT 2000000
#define DRAIN_NS 3000000000LL

static int port;
static uint32_t src_base; /* host order */
static int threads = 1, conc = 1;
static double seconds = 1;
static long max_ops = 1000000;
static unsigned char req[4096];
static size_t req_len;
static unsigned char expect[64];
static size_t expect_len;
static size_t min_len;
static char lookup_prefix[64];
static int lookup_count;
static int churn;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t unhex(const char *s, unsigned char *out, size_t cap) {
    size_t n = 0;
    for (; s[0] && s[1] && n < cap; s += 2) {
        unsigned int b;
        if (sscanf(s, "%2x", &b) != 1) break;
        out[n++] = (unsigned char)b;
    }
    return n;
}

static const char *arg(int argc, char **argv, const char *key, const char *dflt) {
    size_t k = strlen(key);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') return argv[i] + k + 1;
    }
    return dflt;
}

/* A non-blocking connection from `src` to 127.0.0.1:port; -1 on failure. */
static int open_conn(uint32_t src, int blocking) {
    int fd = socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (connect(fd, (struct sockaddr *)&d, sizeof d) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ALIVE2_REQ for `name`, highest version 6 (so the reply is the 6-byte 'v' form). */
static size_t alive2(unsigned char *out, const char *name, int node_port) {
    size_t n = strlen(name);
    size_t len = 13 + n;
    unsigned char *p = out;
    *p++ = len >> 8; *p++ = len & 255;
    *p++ = 120; *p++ = node_port >> 8; *p++ = node_port & 255; *p++ = 77; *p++ = 0;
    *p++ = 0; *p++ = 6; *p++ = 0; *p++ = 5;
    *p++ = n >> 8; *p++ = n & 255;
    memcpy(p, name, n); p += n;
    *p++ = 0; *p++ = 0;
    return p - out;
}

enum state { IDLE, CONNECTING, READING };

struct slot {
    int fd;
    enum state st;
    long long t0;
    long seq;
    size_t got;
    unsigned char head[64];
};

struct worker {
    int id;
    pthread_t th;
    long ops, errors, started, conns;
    long why[4]; /* connect, write, read, reply */
    long nlat;
    uint32_t *lat;
    long long max_lat;
};

static long long t_end;

static uint32_t src_for(struct worker *w) {
    return src_base + (uint32_t)(w->id * 64 + (w->conns++ / ROTATE) % 64);
}

static size_t build_request(struct worker *w, struct slot *s, unsigned char *buf) {
    if (churn) {
        char name[64];
        snprintf(name, sizeof name, "churn%d_%ld", w->id, s->seq);
        return alive2(buf, name, 30000);
    }
    if (lookup_count > 0) {
        char name[80];
        int n = snprintf(name, sizeof name, "%s%ld", lookup_prefix, (s->seq * threads + w->id) % lookup_count);
        buf[0] = (n + 1) >> 8; buf[1] = (n + 1) & 255; buf[2] = 122;
        memcpy(buf + 3, name, n);
        return n + 3;
    }
    memcpy(buf, req, req_len);
    return req_len;
}

static void start(struct worker *w, int ep, struct slot *s) {
    for (int attempt = 0; attempt < 64; attempt++) {
        s->fd = open_conn(src_for(w), 0);
        if (s->fd >= 0) break;
        w->errors++;
        w->why[0]++;
    }
    if (s->fd < 0) { s->st = IDLE; return; }
    s->seq = w->started++;
    s->st = CONNECTING;
    s->t0 = now_ns();
    s->got = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void finish(struct worker *w, struct slot *s, int ok) {
    close(s->fd);
    s->fd = -1;
    s->st = IDLE;
    if (!ok) { w->errors++; return; }
    w->ops++;
    long long us = (now_ns() - s->t0) / 1000;
    if (us > w->max_lat) w->max_lat = us;
    if (w->nlat < MAX_LAT) w->lat[w->nlat++] = (uint32_t)us;
}

static int reply_ok(struct slot *s) {
    size_t n = s->got < expect_len ? s->got : expect_len;
    return s->got >= min_len && s->got >= expect_len && memcmp(s->head, expect, n) == 0;
}

static void *run(void *arg) {
    struct worker *w = arg;
    int n = conc / threads + (w->id < conc % threads);
    long quota = max_ops / threads + (w->id < max_ops % threads);
    int ep = epoll_create1(0);
    struct slot *slots = calloc(n, sizeof *slots);
    w->lat = malloc(sizeof(uint32_t) * MAX_LAT);
    unsigned char buf[65536];
    int active = 0;
    for (int i = 0; i < n && w->started < quota; i++) {
        start(w, ep, &slots[i]);
        if (slots[i].st != IDLE) active++;
    }
    struct epoll_event evs[256];
    while (active > 0) {
        long long t = now_ns();
        if (t > t_end + DRAIN_NS) break;
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct slot *s = evs[i].data.ptr;
            if (s->st == CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                size_t len = build_request(w, s, buf);
                if (err || write(s->fd, buf, len) != (ssize_t)len) {
                    w->why[1]++;
                    finish(w, s, 0);
                } else {
                    s->st = READING;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                    continue;
                }
            } else if (s->st == READING) {
                int done = 0, ok = 0;
                for (;;) {
                    ssize_t r = read(s->fd, buf, sizeof buf);
                    if (r > 0) {
                        size_t room = sizeof s->head - (s->got < sizeof s->head ? s->got : sizeof s->head);
                        if (room > 0) memcpy(s->head + (sizeof s->head - room), buf, (size_t)r < room ? (size_t)r : room);
                        s->got += r;
                        if (churn && s->got >= 6) { done = 1; ok = reply_ok(s); if (!ok) w->why[3]++; break; }
                        continue;
                    }
                    if (r == 0) { done = 1; ok = reply_ok(s); if (!ok) w->why[3]++; }
                    else if (errno != EAGAIN) { done = 1; ok = 0; w->why[2]++; }
                    break;
                }
                if (!done) continue;
                finish(w, s, ok);
            } else {
                continue;
            }
            active--;
            if (now_ns() < t_end && w->started < quota) {
                start(w, ep, s);
                if (s->st != IDLE) active++;
            }
        }
    }
    for (int i = 0; i < n; i++) if (slots[i].st != IDLE) { close(slots[i].fd); w->errors++; }
    free(slots);
    close(ep);
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int load(void) {
    struct worker *ws = calloc(threads, sizeof *ws);
    long long t0 = now_ns();
    t_end = t0 + (long long)(seconds * 1e9);
    for (int i = 0; i < threads; i++) { ws[i].id = i; pthread_create(&ws[i].th, NULL, run, &ws[i]); }
    long ops = 0, errors = 0, nlat = 0, why[4] = {0};
    long long max_lat = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].th, NULL);
        ops += ws[i].ops; errors += ws[i].errors; nlat += ws[i].nlat;
        for (int j = 0; j < 4; j++) why[j] += ws[i].why[j];
        if (ws[i].max_lat > max_lat) max_lat = ws[i].max_lat;
    }
    double elapsed = (now_ns() - t0) / 1e9;
    uint32_t *all = malloc(sizeof(uint32_t) * (nlat + 1));
    long m = 0;
    for (int i = 0; i < threads; i++) { memcpy(all + m, ws[i].lat, sizeof(uint32_t) * ws[i].nlat); m += ws[i].nlat; }
    qsort(all, m, sizeof *all, cmp_u32);
    printf("{\"ops\":%ld,\"errors\":%ld,\"failed\":{\"connect\":%ld,\"write\":%ld,\"read\":%ld,\"reply\":%ld},\"seconds\":%.4f,\"p50_us\":%u,\"p99_us\":%u,\"max_us\":%lld}\n", ops, errors, why[0], why[1], why[2], why[3], elapsed,
           m ? all[m / 2] : 0, m ? all[(long)(m * 0.99)] : 0, max_lat);
    return 0;
}

/* Registrations and idle connections held open until stdin closes. */
static int hold(int regs, int idle, int first) {
    int *fds = malloc(sizeof(int) * (regs + idle + 1));
    uint32_t src = src_base;
    int failed = 0;
    for (int i = 0; i < regs + idle; i++) {
        if (i > 0 && i % ROTATE == 0) src++;
        int fd = open_conn(src, 1);
        if (fd < 0) { failed++; fds[i] = -1; continue; }
        fds[i] = fd;
        if (i >= regs) continue;
        unsigned char buf[128];
        char name[32];
        snprintf(name, sizeof name, "node%d", first + i);
        size_t len = alive2(buf, name, 20000 + i % 40000);
        unsigned char r[8];
        if (write(fd, buf, len) != (ssize_t)len || read(fd, r, sizeof r) < 2 || r[1] != 0) failed++;
    }
    printf("{\"ready\":true,\"failed\":%d}\n", failed);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {}
    return 0;
}

static long long elapsed_us(long long t0) { return (now_ns() - t0) / 1000; }

/* Start-up time of COMMAND: fork+exec → port accepts (→ READY=1 with notify=1). */
static int startup(char **cmd, int notify) {
    char path[108];
    int ns = -1;
    if (notify) {
        snprintf(path, sizeof path, "/tmp/epmd-ng-bench-notify-%d", getpid());
        unlink(path);
        ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strcpy(a.sun_path, path);
        if (bind(ns, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind notify"); return 1; }
        setenv("NOTIFY_SOCKET", path, 1);
    }
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1); dup2(devnull, 2);
        execvp(cmd[0], cmd);
        _exit(127);
    }
    long long listen_us = -1, ready_us = -1;
    while (elapsed_us(t0) < 10000000 && (listen_us < 0 || (notify && ready_us < 0))) {
        if (listen_us < 0) {
            int fd = open_conn(0x7f000001, 1);
            if (fd >= 0) {
                int err = 0; socklen_t el = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
                struct sockaddr_in peer; socklen_t pl = sizeof peer;
                if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) listen_us = elapsed_us(t0);
                close(fd);
            }
        }
        if (notify && ready_us < 0) {
            char msg[4096];
            ssize_t r;
            while ((r = recv(ns, msg, sizeof msg - 1, 0)) > 0) {
                msg[r] = 0;
                if (strstr(msg, "READY=1")) ready_us = elapsed_us(t0);
            }
        }
        usleep(200);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (notify) { close(ns); unlink(path); }
    printf("{\"listen_us\":%lld,\"ready_us\":%lld}\n", listen_us, ready_us);
    return listen_us < 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: loadgen req|churn|hold|startup key=value...\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    port = atoi(arg(argc, argv, "port", "4369"));
    struct in_addr src;
    inet_pton(AF_INET, arg(argc, argv, "src", "127.0.0.1"), &src);
    src_base = ntohl(src.s_addr);
    threads = atoi(arg(argc, argv, "threads", "1"));
    conc = atoi(arg(argc, argv, "conc", "1"));
    seconds = atof(arg(argc, argv, "seconds", "1"));
    max_ops = atol(arg(argc, argv, "max", "1000000"));
    if (threads < 1 || threads > 4 || conc < threads) { fprintf(stderr, "loadgen: 1..4 threads, conc >= threads\n"); return 2; }
    req_len = unhex(arg(argc, argv, "req", ""), req, sizeof req);
    expect_len = unhex(arg(argc, argv, "expect", ""), expect, sizeof expect);
    min_len = atol(arg(argc, argv, "minlen", "0"));
    const char *lookup = arg(argc, argv, "lookup", NULL);
    if (lookup) {
        const char *colon = strchr(lookup, ':');
        if (!colon || colon - lookup >= (long)sizeof lookup_prefix) { fprintf(stderr, "loadgen: lookup=PREFIX:COUNT\n"); return 2; }
        memcpy(lookup_prefix, lookup, colon - lookup);
        lookup_count = atoi(colon + 1);
    }
    if (strcmp(argv[1], "req") == 0) return load();
    if (strcmp(argv[1], "churn") == 0) {
        churn = 1;
        expect[0] = 118; expect[1] = 0; expect_len = 2; min_len = 6;
        return load();
    }
    if (strcmp(argv[1], "hold") == 0) return hold(atoi(arg(argc, argv, "regs", "0")), atoi(arg(argc, argv, "idle", "0")), atoi(arg(argc, argv, "first", "0")));
    if (strcmp(argv[1], "startup") == 0) {
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "--") == 0 && i + 1 < argc) return startup(argv + i + 1, atoi(arg(argc, argv, "notify", "0")));
        fprintf(stderr, "loadgen startup: -- COMMAND missing\n");
        return 2;
    }
    fprintf(stderr, "loadgen: unknown mode %s\n", argv[1]);
    return 2;
}
