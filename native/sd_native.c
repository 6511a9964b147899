// sd_native: the few Linux system calls epmd-ng needs to live under systemd that Node has no API for.
//
// - notify(state, fds?, address?) -> bool: one sd_notify datagram, optionally carrying fds (FDSTORE).
//   Node's dgram has no AF_UNIX and net has no SOCK_DGRAM, so this cannot be done in JS.
// - sockInfo(fd) -> {domain, type, protocol, acceptConn, reusePort} | null: tells inherited listening sockets from
//   stored connections (Node has no getsockopt).
// - setCloexec(fd, on), memfdCreate(name), getRlimitNofile() -> {soft, hard}.
// - sendDatagram(address, payload, largeAsMemfd) -> bool: one log entry to journald's native socket
//   or /dev/log, never blocking; a journal entry too large for a datagram goes as a sealed memfd.
// - steerReuseport(fd, index): sends every new connection of fd's SO_REUSEPORT group to the socket
//   at `index`, so that an older listener in the group can be drained and closed without a reset.
// - listenTcp(host, port, {ipv6Only, freeBind, thisHostOnly}) -> fd, setThisHostOnly(fd, on) and
//   filterState(fd): listening sockets with what Node's net module cannot set (IP_FREEBIND, a socket
//   filter), set up before listen() so that no packet meets a half-configured socket. Node takes the
//   fd over with server.listen({fd}).
// - setReusePort(fd): SO_REUSEPORT on an inherited listening socket, so that a new socket can bind
//   beside it and take its port over without a moment in which nothing listens (the first
//   installation over erlang-base's running epmd).
// - listenBacklog(fd) -> number | null: the accept-queue limit a listening TCP socket was given
//   (TCP_INFO). Node's server.listen({fd}) calls listen() again, with 511 unless told otherwise;
//   this is how it is told the backlog the socket already has.
// - dropNewConnections(fd) and acceptQueueLength(fd) -> number | null: retire a listening socket
//   that is not in our SO_REUSEPORT group (erlang-base's, at the first installation) without
//   resetting a connection: it stops taking new ones, and its queue is seen to empty before it closes.
// - peerIsLocal(fd) -> bool | null: the spec's locality rule (§7) decided on the raw addresses of a
//   connected socket. Node can only tell them as text, and reading socket.remoteAddress costs a
//   formatted string, an object, and a property that changes the shape of the Node socket.
//
// Only libc and raw Node-API: no libsystemd (an extra build dependency, and it pulls in compression
// libraries), no node-addon-api (C++). NAPI_VERSION 8 keeps the binary loadable by Node 18 and every
// later major without a rebuild.
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// Node-style errno names for Error.code. A switch rather than strerrorname_np (glibc >= 2.32 only).
static const char *errno_name(int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT)
    E(ENOTDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOSPC) E(EPIPE) E(ENAMETOOLONG) E(ENOSYS) E(ELOOP)
    E(ENOTSOCK) E(EDESTADDRREQ) E(EMSGSIZE) E(EPROTOTYPE) E(EOPNOTSUPP) E(EAFNOSUPPORT)
    E(EADDRNOTAVAIL) E(EADDRINUSE) E(ENOBUFS) E(ECONNRESET) E(ECONNREFUSED) E(ETOOMANYREFS) E(ENOTCONN) E(EPROTONOSUPPORT)
#undef E
    default: return "EUNKNOWN";
  }
}

// Throws an Error shaped like Node's system errors: message "<syscall> <CODE>: <strerror>[ (<detail>)]",
// .code, .errno (negative, as libuv reports it) and .syscall.
static void throw_errno(napi_env env, int e, const char *syscall, const char *detail) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s %s: %s%s%s%s", syscall, errno_name(e), strerror(e),
           detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
  napi_value code, text, err, num, sys;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);  // also sets err.code
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, err, "syscall", sys);
  napi_throw(env, err);
}

// Reads an fd: a non-negative integral number; throws TypeError and returns -1 otherwise.
static int get_fd(napi_env env, napi_value v, const char *what) {
  napi_valuetype t;
  double d = -1;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok ||
      !(d >= 0 && d <= INT32_MAX && d == (double)(int)d)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  return (int)d;
}

// The fd that `fn(fd, ...)` takes as its first argument; -1 after throwing a TypeError.
static int fd_arg(napi_env env, size_t argc, napi_value *argv, const char *fn) {
  char what[96];
  if (argc < 1) {
    snprintf(what, sizeof what, "%s: fd is required", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  snprintf(what, sizeof what, "%s: fd must be a non-negative integer", fn);
  return get_fd(env, argv[0], what);
}

// The fd of `fn(fd)`, a function of that one argument; -1 after throwing a TypeError.
static int sole_fd_arg(napi_env env, napi_callback_info info, const char *fn) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return fd_arg(env, argc, argv, fn);
}

// The boolean second argument of `fn(fd, on)`, `fallback` when it is left out (-1: required);
// -1 after throwing a TypeError.
static int bool_arg(napi_env env, size_t argc, napi_value *argv, const char *fn, int fallback) {
  bool on = false;
  if (argc < 2 && fallback >= 0) return fallback;
  if (argc < 2 || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    char what[96];
    snprintf(what, sizeof what, "%s: on must be a boolean", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  return on;
}

// Returns a malloc'ed NUL-terminated copy of a JS string (length in *len), or NULL after throwing.
static char *get_string(napi_env env, napi_value v, size_t *len, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return NULL;
  }
  size_t n = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  char *s = malloc(n + 1);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  if (len) *len = n;
  return s;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null;
}

// Fills *sa from a NOTIFY_SOCKET value the way sd_notify does: "/path" is a filesystem socket (length
// includes the NUL), "@name" is an abstract socket (leading NUL, length excludes any trailing NUL,
// because abstract names are matched byte for byte). Anything else (e.g. systemd 254's "vsock:") is
// not supported by this code. Returns the address length, or -errno.
static int notify_addr(const char *e, struct sockaddr_un *sa) {
  size_t l = strlen(e);
  if (e[0] != '/' && e[0] != '@') return -EAFNOSUPPORT;
  if (l < 2) return -EINVAL;
  if (l > sizeof(sa->sun_path) - (e[0] == '/')) return -ENAMETOOLONG;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, e, l);
  if (e[0] == '@') {
    sa->sun_path[0] = '\0';
    return (int)(offsetof(struct sockaddr_un, sun_path) + l);
  }
  return (int)(offsetof(struct sockaddr_un, sun_path) + l + 1);
}

static ssize_t sendmsg_nowait(int sock, const struct msghdr *mh) {
  ssize_t n;
  do n = sendmsg(sock, mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n;
}

// Resolves addr into *sa (*salen) and opens a datagram socket to send there; -1 after throwing.
static int dgram_socket_for(napi_env env, const char *addr, struct sockaddr_un *sa, socklen_t *salen, const char *what) {
  int l = notify_addr(addr, sa);
  if (l < 0) {
    throw_errno(env, -l, what, addr);
    return -1;
  }
  *salen = (socklen_t)l;
  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw_errno(env, errno, "socket", NULL);
  return sock;
}

// notify(state: string, fds?: number[] | null, address?: string): boolean
// address defaults to getenv("NOTIFY_SOCKET") at call time; an unset or empty address returns false.
// The optional address lets the JS side pass its own view of the environment: in a worker thread
// process.env is a copy that getenv() here would not see.
static napi_value js_notify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "notify(state, fds?, address?): state must be a string");
    return NULL;
  }

  size_t state_len = 0;
  char *state = get_string(env, argv[0], &state_len, "notify: state must be a string");
  char *addr_arg = NULL;
  int *fds = NULL;
  uint32_t nfds = 0;
  if (!state) return NULL;

  if (argc >= 2 && !is_nullish(env, argv[1])) {
    bool is_array = false;
    napi_is_array(env, argv[1], &is_array);
    if (!is_array) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "notify: fds must be an array of fd numbers");
      goto out;
    }
    napi_get_array_length(env, argv[1], &nfds);
    if (nfds > 0) {
      fds = calloc(nfds, sizeof(int));
      if (!fds) {
        napi_throw_error(env, "ENOMEM", "out of memory");
        goto out;
      }
    }
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value el;
      napi_get_element(env, argv[1], i, &el);
      if ((fds[i] = get_fd(env, el, "notify: fds must be non-negative integers")) < 0) goto out;
    }
  }

  const char *addr;
  if (argc >= 3 && !is_nullish(env, argv[2])) {
    if (!(addr_arg = get_string(env, argv[2], NULL, "notify: address must be a string"))) goto out;
    addr = addr_arg;
  } else {
    addr = getenv("NOTIFY_SOCKET");
  }
  if (!addr || !*addr) {
    napi_get_boolean(env, false, &result);
    goto out;
  }

  struct sockaddr_un sa;
  socklen_t salen;
  int sock = dgram_socket_for(env, addr, &sa, &salen, "notify");
  if (sock < 0) goto out;

  struct iovec iov = {.iov_base = state, .iov_len = state_len};
  struct msghdr mh = {.msg_name = &sa, .msg_namelen = salen, .msg_iov = &iov, .msg_iovlen = 1};
  char *cbuf = NULL;
  if (nfds > 0) {
    size_t clen = CMSG_SPACE(sizeof(int) * nfds);
    if (!(cbuf = calloc(1, clen))) {
      close(sock);
      napi_throw_error(env, "ENOMEM", "out of memory");
      goto out;
    }
    mh.msg_control = cbuf;
    mh.msg_controllen = clen;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  // No SCM_CREDENTIALS needed: PID 1 sets SO_PASSCRED, so the kernel attaches our pid itself.
  // Never blocks: when PID 1 lags behind (its fd store costs it time per stored fd), the send fails
  // with EAGAIN and the caller decides what to retry, instead of the daemon's event loop stalling
  // until the watchdog fires.
  ssize_t n = sendmsg_nowait(sock, &mh);
  int saved = errno;
  close(sock);
  free(cbuf);
  if (n < 0) {
    throw_errno(env, saved, "sendmsg", addr);
    goto out;
  }
  napi_get_boolean(env, true, &result);

out:
  free(state);
  free(addr_arg);
  free(fds);
  return result;
}

// A memfd holding data, sealed against every change: journald maps a sealed memfd directly, and
// refuses an unsealed fd from an unprivileged sender (the unit's dynamic user).
static int sealed_memfd(const char *data, size_t len) {
  int fd = memfd_create("epmd-ng-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) goto fail;
    off += (size_t)w;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) goto fail;
  return fd;
fail: {
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}
}

// sendDatagram(address: string, payload: Buffer, largeAsMemfd: boolean): boolean
// Sends payload as one datagram to an AF_UNIX address ("/path" or "@abstract"). Returns false when
// the receiver's queue is full (EAGAIN): a log entry must never stall the event loop, the caller
// writes it elsewhere. With largeAsMemfd, a payload too large for a datagram (EMSGSIZE, ENOBUFS)
// goes the way journald's native protocol defines: a sealed memfd passed with SCM_RIGHTS and an
// empty payload. Throws on any other failure (ENOENT, ECONNREFUSED, EACCES: nobody listens).
static napi_value js_send_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false, large_as_memfd = false;
  if (argc < 2 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendDatagram(address, payload, largeAsMemfd): payload must be a Buffer");
    return NULL;
  }
  if (argc >= 3) napi_get_value_bool(env, argv[2], &large_as_memfd);
  char *addr = get_string(env, argv[0], NULL, "sendDatagram: address must be a string");
  if (!addr) return NULL;
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[1], &data, &len);

  struct sockaddr_un sa;
  socklen_t salen;
  int sock = dgram_socket_for(env, addr, &sa, &salen, "sendDatagram");
  if (sock < 0) goto out;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr mh = {.msg_name = &sa, .msg_namelen = salen, .msg_iov = &iov, .msg_iovlen = 1};
  ssize_t n = sendmsg_nowait(sock, &mh);
  if (n < 0 && large_as_memfd && (errno == EMSGSIZE || errno == ENOBUFS)) {
    int memfd = sealed_memfd(data, len);
    if (memfd < 0) {
      int e = errno;
      close(sock);
      throw_errno(env, e, "memfd_create", "sealed journal entry");
      goto out;
    }
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr fdmh = {.msg_name = &sa, .msg_namelen = salen, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&fdmh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &memfd, sizeof(int));
    n = sendmsg_nowait(sock, &fdmh);
    int e = errno;
    close(memfd);
    errno = e;
  }
  int saved = errno;
  close(sock);
  if (n < 0 && saved != EAGAIN) {
    throw_errno(env, saved, "sendmsg", addr);
    goto out;
  }
  napi_get_boolean(env, n >= 0, &result);

out:
  free(addr);
  return result;
}

static int getsockopt_int(int fd, int opt, int *val) {
  socklen_t l = sizeof *val;
  return getsockopt(fd, SOL_SOCKET, opt, val, &l);
}

static void set_int(napi_env env, napi_value obj, const char *name, int v) {
  napi_value x;
  napi_create_int32(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

// sockInfo(fd: number): {domain, type, protocol, acceptConn, reusePort} | null (null: fd is open but not a socket).
static napi_value js_sock_info(napi_env env, napi_callback_info info) {
  napi_value obj, b;
  int fd = sole_fd_arg(env, info, "sockInfo");
  if (fd < 0) return NULL;
  int domain, type, protocol, accepting, reuse_port;
  if (getsockopt_int(fd, SO_DOMAIN, &domain) < 0) {
    if (errno == ENOTSOCK) {
      napi_get_null(env, &obj);
      return obj;
    }
    throw_errno(env, errno, "getsockopt", "SO_DOMAIN");
    return NULL;
  }
  if (getsockopt_int(fd, SO_TYPE, &type) < 0 || getsockopt_int(fd, SO_PROTOCOL, &protocol) < 0 ||
      getsockopt_int(fd, SO_ACCEPTCONN, &accepting) < 0 || getsockopt_int(fd, SO_REUSEPORT, &reuse_port) < 0) {
    throw_errno(env, errno, "getsockopt", NULL);
    return NULL;
  }
  napi_create_object(env, &obj);
  set_int(env, obj, "domain", domain);
  set_int(env, obj, "type", type);
  set_int(env, obj, "protocol", protocol);
  napi_get_boolean(env, accepting != 0, &b);
  napi_set_named_property(env, obj, "acceptConn", b);
  napi_get_boolean(env, reuse_port != 0, &b);
  napi_set_named_property(env, obj, "reusePort", b);
  return obj;
}

// setCloexec(fd: number, on: boolean): void
static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd = fd_arg(env, argc, argv, "setCloexec");
  int on = fd < 0 ? -1 : bool_arg(env, argc, argv, "setCloexec", 1);
  if (on < 0) return NULL;
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0) {
    throw_errno(env, errno, "fcntl", NULL);
  }
  return NULL;
}

// memfdCreate(name: string): number. Close-on-exec, so the state never leaks into child processes; the
// fd store holds its own copy.
static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "memfdCreate(name): name is required");
    return NULL;
  }
  char *name = get_string(env, argv[0], NULL, "memfdCreate: name must be a string");
  if (!name) return NULL;
  int fd = memfd_create(name, MFD_CLOEXEC);
  int saved = errno;
  free(name);
  if (fd < 0) {
    throw_errno(env, saved, "memfd_create", NULL);
    return NULL;
  }
  napi_create_int32(env, fd, &out);
  return out;
}

// RLIM_INFINITY becomes Infinity; real limits fit a double exactly.
static napi_value limit_value(napi_env env, rlim_t v) {
  napi_value x;
  napi_create_double(env, v == RLIM_INFINITY ? (double)INFINITY : (double)v, &x);
  return x;
}

// getRlimitNofile(): {soft, hard}
static napi_value js_get_rlimit_nofile(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit rl;
  napi_value obj;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
    throw_errno(env, errno, "getrlimit", NULL);
    return NULL;
  }
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "soft", limit_value(env, rl.rlim_cur));
  napi_set_named_property(env, obj, "hard", limit_value(env, rl.rlim_max));
  return obj;
}

// steerReuseport(fd: number, index: number): void
// Attaches a one-instruction classic BPF program to the SO_REUSEPORT group of the listening socket fd:
// it returns `index`, the position of the socket that gets new connections. The kernel numbers the
// group's sockets in the order they joined it and falls back to its hash when the index is out of
// range, so once the older sockets are closed the program is harmless.
static napi_value js_steer_reuseport(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd = fd_arg(env, argc, argv, "steerReuseport");
  if (fd < 0) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "steerReuseport: index is required");
    return NULL;
  }
  // An index has the same shape as an fd: a non-negative integer.
  int index = get_fd(env, argv[1], "steerReuseport: index must be a non-negative integer");
  if (index < 0) return NULL;
  struct sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, (unsigned)index)};
  struct sock_fprog prog = {1, code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) {
    throw_errno(env, errno, "setsockopt", "SO_ATTACH_REUSEPORT_CBPF");
  }
  return NULL;
}

// "This host only": a packet passes when it arrived on the loopback device, which is how a host's
// packets to any address of its own travel (127.0.1.1, LAN, secondary and IPv6 addresses, also
// ones added later, whatever source address the kernel picked); no other host's packet ever
// arrives there. For hosts with VRFs, where local traffic loops through the VRF device instead,
// a packet also passes when its source is IPv4 127.0.0.0/8, IPv6 ::1, or equal to its destination
// (Linux drops IPv4 packets from outside with a local source; a spoofed IPv6 one cannot complete
// a handshake, as the SYN-ACK goes to this host itself). Dropped packets never reach TCP: a
// remote SYN gets neither SYN-ACK nor RST, and a scanner sees the port as filtered. Accepted
// connections inherit the filter. Loads are relative to the network header (SKF_NET_OFF), so one
// program serves IPv4, IPv6 and dual-stack sockets; skb->protocol says which header it is.
#define LOOPBACK_IFINDEX 1  // fixed by the kernel in every network namespace
enum { IPV4 = 2, V6 = 10, V6_LOOPBACK = 27, ACCEPT = 35, DROP = 36 };
#define LD_NET_W(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + (off))
#define TAX BPF_STMT(BPF_MISC | BPF_TAX, 0)
// Jump offsets are relative to the next instruction; `at` is the jump's own index.
#define IF_K(at, k, yes, no) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (yes) - (at) - 1, (no) - (at) - 1)
#define IF_X(at, yes, no) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, (yes) - (at) - 1, (no) - (at) - 1)
static struct sock_filter this_host_only[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_IFINDEX),
    /* 1 */ IF_K(1, LOOPBACK_IFINDEX, ACCEPT, IPV4),
    /* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
    /* 3 */ IF_K(3, ETH_P_IP, 4, V6),
    // IPv4: source at 12, destination at 16.
    /* 4 */ LD_NET_W(12), /* 5 */ TAX,
    /* 6 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff000000),
    /* 7 */ IF_K(7, 0x7f000000, ACCEPT, 8),
    /* 8 */ LD_NET_W(16), /* 9 */ IF_X(9, ACCEPT, DROP),
    // IPv6: source at 8..23, destination at 24..39, compared 32 bits at a time.
    /* 10 */ IF_K(10, ETH_P_IPV6, 11, DROP),
    /* 11 */ LD_NET_W(8), /* 12 */ TAX, /* 13 */ LD_NET_W(24), /* 14 */ IF_X(14, 15, V6_LOOPBACK),
    /* 15 */ LD_NET_W(12), /* 16 */ TAX, /* 17 */ LD_NET_W(28), /* 18 */ IF_X(18, 19, V6_LOOPBACK),
    /* 19 */ LD_NET_W(16), /* 20 */ TAX, /* 21 */ LD_NET_W(32), /* 22 */ IF_X(22, 23, V6_LOOPBACK),
    /* 23 */ LD_NET_W(20), /* 24 */ TAX, /* 25 */ LD_NET_W(36), /* 26 */ IF_X(26, ACCEPT, V6_LOOPBACK),
    // Source ::1.
    /* 27 */ LD_NET_W(8), /* 28 */ IF_K(28, 0, 29, DROP),
    /* 29 */ LD_NET_W(12), /* 30 */ IF_K(30, 0, 31, DROP),
    /* 31 */ LD_NET_W(16), /* 32 */ IF_K(32, 0, 33, DROP),
    /* 33 */ LD_NET_W(20), /* 34 */ IF_K(34, 1, ACCEPT, DROP),
    /* 35 */ BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
    /* 36 */ BPF_STMT(BPF_RET | BPF_K, 0),
};
_Static_assert(sizeof this_host_only / sizeof this_host_only[0] == DROP + 1, "labels match the program");

// "No new connections": drops a segment that opens a connection (SYN without ACK) and passes every
// other, so a listening socket about to close takes no new connection but completes the handshakes
// it has begun (their final ACK passes). The client of a dropped SYN sends it again after 1 s, to
// whichever socket listens then. A TCP socket's filter sees the segment from its TCP header on, and
// the flags are its byte 13 (SYN 0x02, ACK 0x10).
static struct sock_filter no_new_connections[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x02 | 0x10),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0),
    BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
};
_Static_assert(sizeof no_new_connections <= sizeof this_host_only, "filterState reads at most this_host_only's length");

#define PROGRAM(code) {sizeof code / sizeof code[0], code}
static int attach_filter(int fd, struct sock_fprog prog) {
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

// Attaches the filter (on) or removes whatever filter the socket has (off; none is fine).
static int set_this_host_only(int fd, bool on) {
  if (on) return attach_filter(fd, (struct sock_fprog)PROGRAM(this_host_only));
  int dummy = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &dummy, sizeof dummy) < 0 && errno != ENOENT) return -1;
  return 0;
}

// setThisHostOnly(fd: number, on: boolean): void
static napi_value js_set_this_host_only(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd = fd_arg(env, argc, argv, "setThisHostOnly");
  int on = fd < 0 ? -1 : bool_arg(env, argc, argv, "setThisHostOnly", -1);
  if (on < 0) return NULL;
  if (set_this_host_only(fd, on) < 0) throw_errno(env, errno, "setsockopt", on ? "SO_ATTACH_FILTER" : "SO_DETACH_FILTER");
  return NULL;
}

static bool get_bool_prop(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_coerce_to_bool(env, v, &v) != napi_ok) return false;
  napi_get_value_bool(env, v, &b);
  return b;
}

// dropNewConnections(fd: number): void
static napi_value js_drop_new_connections(napi_env env, napi_callback_info info) {
  int fd = sole_fd_arg(env, info, "dropNewConnections");
  if (fd >= 0 && attach_filter(fd, (struct sock_fprog)PROGRAM(no_new_connections)) < 0)
    throw_errno(env, errno, "setsockopt", "SO_ATTACH_FILTER");
  return NULL;
}

// filterState(fd: number): "none" | "this-host-only" | "no-new-connections" | "other": which classic
// filter the socket has (SO_GET_FILTER returns the program as it was attached).
static napi_value js_filter_state(napi_env env, napi_callback_info info) {
  static const struct {
    const char *name;
    struct sock_fprog prog;
  } known[] = {{"this-host-only", PROGRAM(this_host_only)}, {"no-new-connections", PROGRAM(no_new_connections)}};
  enum { LONGEST = sizeof this_host_only / sizeof this_host_only[0] };
  napi_value out;
  int fd = sole_fd_arg(env, info, "filterState");
  if (fd < 0) return NULL;
  struct sock_filter installed[LONGEST];
  socklen_t blocks = 0;  // in blocks, not bytes: 0 asks for the count only
  if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &blocks) < 0) {
    throw_errno(env, errno, "getsockopt", "SO_GET_FILTER");
    return NULL;
  }
  const char *state = blocks == 0 ? "none" : "other";
  if (blocks > 0 && blocks <= LONGEST) {
    if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, installed, &blocks) < 0) {
      throw_errno(env, errno, "getsockopt", "SO_GET_FILTER");
      return NULL;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      if (known[i].prog.len == blocks && memcmp(installed, known[i].prog.filter, blocks * sizeof installed[0]) == 0)
        state = known[i].name;
  }
  napi_create_string_utf8(env, state, NAPI_AUTO_LENGTH, &out);
  return out;
}

// listenTcp(host: string, port: number, options: {ipv6Only, freeBind, thisHostOnly}): number
// A listening TCP socket (close-on-exec, SO_REUSEADDR as Node and OTP set it). Errors throw with the
// failing call as .syscall and its errno name as .code (EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT...).
static napi_value js_listen_tcp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "listenTcp(host, port, options): all three are required");
    return NULL;
  }
  char *host = get_string(env, argv[0], NULL, "listenTcp: host must be a string");
  if (!host) return NULL;
  uint32_t port = 0;
  if (napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535) {
    free(host);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "listenTcp: port must be 0..65535");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    len = sizeof *a6;
  } else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    len = sizeof *a4;
  } else {
    free(host);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "listenTcp: host must be a numeric IPv4 or IPv6 address");
    return NULL;
  }
  free(host);
  bool v6only = get_bool_prop(env, argv[2], "ipv6Only");
  bool freebind = get_bool_prop(env, argv[2], "freeBind");
  bool local = get_bool_prop(env, argv[2], "thisHostOnly");
  int one = 1, v6 = v6only ? 1 : 0;
  const char *failed = "socket";
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) goto fail;
  failed = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
  if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6) < 0) goto fail;
  // IP_FREEBIND applies to IPv6 sockets too (the kernel checks the same flag for both families).
  if (freebind && setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0) goto fail;
  // Best effort: Linux 6.18 and later want CAP_NET_ADMIN for a filter on a TCP socket. The caller
  // asks filterState() whether it is in place and falls back to its accept-time check.
  if (local) set_this_host_only(fd, true);
  failed = "bind";
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) goto fail;
  failed = "listen";
  if (listen(fd, SOMAXCONN) < 0) goto fail;
  napi_create_int32(env, fd, &out);
  return out;
fail: {
  int saved = errno;
  if (fd >= 0) close(fd);
  throw_errno(env, saved, failed, NULL);
  return NULL;
}
}

// setReusePort(fd: number): void
// Sets SO_REUSEPORT on a listening socket that is already bound. The flag belongs to the socket, so
// it holds for every process that has it open: a socket that sets SO_REUSEPORT too and has the
// same owner can then bind the same port beside it.
static napi_value js_set_reuse_port(napi_env env, napi_callback_info info) {
  int fd = sole_fd_arg(env, info, "setReusePort");
  if (fd < 0) return NULL;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) throw_errno(env, errno, "setsockopt", "SO_REUSEPORT");
  return NULL;
}

// 127.0.0.0/8, ::1, or 127.0.0.0/8 as a dual-stack socket shows it (::ffff:127.x.y.z).
static bool is_loopback(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
  if (a->ss_family != AF_INET6) return false;
  const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(v6) || (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
}

// The same address (ports aside). A link-local address counts with its interface, as Node's text
// of it does ("fe80::1%eth0").
static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  if (a->ss_family != AF_INET6) return false;
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  if (memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) != 0) return false;
  return !IN6_IS_ADDR_LINKLOCAL(&x->sin6_addr) || x->sin6_scope_id == y->sin6_scope_id;
}

// peerIsLocal(fd: number): boolean | null
// Whether the peer of a connected TCP socket is on this host by the spec's rule: a loopback address,
// or the connection's own local address. null when the socket has no peer (closed, not connected).
static napi_value js_peer_is_local(napi_env env, napi_callback_info info) {
  napi_value out;
  int fd = sole_fd_arg(env, info, "peerIsLocal");
  if (fd < 0) return NULL;
  struct sockaddr_storage peer, own;
  socklen_t peer_len = sizeof peer, own_len = sizeof own;
  int local = -1;  // unknown: no peer, or no local address
  if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0) {
    // The local address is read only for the rare peer that is not loopback.
    if (is_loopback(&peer)) local = 1;
    else if (getsockname(fd, (struct sockaddr *)&own, &own_len) == 0) local = same_address(&peer, &own);
  }
  if (local < 0) napi_get_null(env, &out);
  else napi_get_boolean(env, local == 1, &out);
  return out;
}

// For a listening TCP socket the kernel reports its backlog (sk_max_ack_backlog, already capped by
// net.core.somaxconn) in tcpi_sacked and the connections waiting to be accepted in tcpi_unacked.
// `fn(fd)` returns the one or the other, null for any other socket or fd.
static napi_value listen_queue_number(napi_env env, napi_callback_info info, const char *fn, bool queued) {
  napi_value out;
  int fd = sole_fd_arg(env, info, fn);
  if (fd < 0) return NULL;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
    // ENOTSOCK, EOPNOTSUPP (not TCP): nothing to tell. A closed fd is the caller's mistake.
    if (errno == EBADF) {
      throw_errno(env, errno, "getsockopt", "TCP_INFO");
      return NULL;
    }
    napi_get_null(env, &out);
  } else if (ti.tcpi_state != TCP_LISTEN) {
    napi_get_null(env, &out);
  } else {
    // int32 like the other numbers here: each distinct napi_* function the addon calls is one more
    // lookup in node's symbol table, a page or two of it resident for good.
    napi_create_int32(env, (int32_t)(queued ? ti.tcpi_unacked : ti.tcpi_sacked), &out);
  }
  return out;
}

// listenBacklog(fd: number): number | null
static napi_value js_listen_backlog(napi_env env, napi_callback_info info) {
  return listen_queue_number(env, info, "listenBacklog", false);
}

// acceptQueueLength(fd: number): number | null
static napi_value js_accept_queue_length(napi_env env, napi_callback_info info) {
  return listen_queue_number(env, info, "acceptQueueLength", true);
}

// No global state, so the module is safe to load in several contexts (worker threads, vitest).
NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"notify", NULL, js_notify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sockInfo", NULL, js_sock_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setCloexec", NULL, js_set_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"memfdCreate", NULL, js_memfd_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getRlimitNofile", NULL, js_get_rlimit_nofile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendDatagram", NULL, js_send_datagram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"steerReuseport", NULL, js_steer_reuseport, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenTcp", NULL, js_listen_tcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThisHostOnly", NULL, js_set_this_host_only, NULL, NULL, NULL, napi_enumerable, NULL},
      {"filterState", NULL, js_filter_state, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReusePort", NULL, js_set_reuse_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerIsLocal", NULL, js_peer_is_local, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenBacklog", NULL, js_listen_backlog, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptQueueLength", NULL, js_accept_queue_length, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dropNewConnections", NULL, js_drop_new_connections, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
