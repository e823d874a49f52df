// Batched UDP for sinkhole: one socket, recvmmsg into preallocated slots, one JS call per
// batch, answers queued and sent with one sendmmsg. Linux only (recvmmsg/sendmmsg).
//
// JS sees, per batch: onBatch(count, payloads) where `payloads` is a pool Buffer holding the
// batch's datagrams back to back (among earlier batches': see payload_pool), and the socket's
// shared `meta` ArrayBuffer holds one record of META_WORDS uint32 per datagram: offset in
// payloads, length, source port, family (4|6; for IPv6 the scope id above the low 8 bits),
// then the 16 address bytes (IPv4: word 4 is the address as a number,
// a.b.c.d = a<<24|b<<16|c<<8|d). Bytes a batch was given are never written again, so that a
// handler may keep its query (the forwarder does) without copying.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define META_WORDS 8
// The largest UDP payload: a slot takes any datagram whole, as dgram does. Only the pages a
// datagram touches become resident, so 64 KiB slots cost address space, not memory.
#define SLOT_BYTES 65536
#define SEND_ARENA_BYTES (256 * 1024)
#define SEND_MAX 1024
// Batches read per readable event before yielding to the rest of the event loop.
#define MAX_BATCHES_PER_WAKE 8
// Room per datagram for its SCM_TIMESTAMPNS (see setMaxWait).
#define CONTROL_BYTES CMSG_SPACE(sizeof(struct timespec))

// Where datagrams are handed to JS: a Buffer of POOL_BYTES filled batch after batch, each
// batch given the pool and its own offsets; a new pool when the next batch does not fit (an
// old one lives on while JS keeps a view of it, a query in flight). A fresh Buffer per batch
// made one ArrayBuffer per wake-up, that is per query below saturation, and V8 frees every
// young ArrayBuffer's memory inside the scavenge, on the DNS thread: 1-6.5 ms of each
// scavenge's pause at W3 10,000 q/s (scavenge.sweep_array_buffers, docs/performance.md).
#define POOL_BYTES (256 * 1024)
typedef struct {
  napi_ref buffer;   // NULL until the first batch
  unsigned char *data;
  size_t size;
  size_t used;
} payload_pool;

// Room for `bytes` in the pool (a new pool if they do not fit): the pool Buffer in `*buffer`,
// where they go in `*at`, their offset in it in `*base`. Returns 0, or -1 when no Buffer could be made.
static int pool_take(napi_env env, payload_pool *p, size_t bytes, napi_value *buffer, unsigned char **at, size_t *base) {
  if (p->buffer == NULL || p->size - p->used < bytes) {
    size_t size = bytes > POOL_BYTES ? bytes : POOL_BYTES;
    void *data = NULL;
    napi_value fresh;
    if (napi_create_buffer(env, size, &data, &fresh) != napi_ok) return -1;
    if (p->buffer != NULL) napi_delete_reference(env, p->buffer);
    napi_create_reference(env, fresh, 1, &p->buffer);
    p->data = data;
    p->size = size;
    p->used = 0;
  }
  napi_get_reference_value(env, p->buffer, buffer);
  *at = p->data + p->used;
  *base = p->used;
  p->used += bytes;
  return 0;
}

static void pool_release(napi_env env, payload_pool *p) {
  if (p->buffer != NULL) napi_delete_reference(env, p->buffer);
  p->buffer = NULL;
}

typedef struct batch_socket {
  uv_poll_t poll;
  int fd;
  int family;
  int events;      // what the poll handle watches now (UV_READABLE, + UV_WRITABLE while sends wait)
  int closing;
  int closed;      // the poll handle is closed and the descriptor too
  int in_batch;
  napi_env env;
  napi_ref self;       // strong while open: a listening socket must not be collected
  napi_ref on_batch;
  napi_ref on_error;
  napi_ref on_close;
  napi_ref meta_ref;
  napi_async_context async;
  uint32_t *meta;
  payload_pool pool;
  unsigned batch;
  unsigned char *slots;   // batch * SLOT_BYTES
  struct mmsghdr *rmsgs;
  struct iovec *riov;
  struct sockaddr_storage *raddr;
  unsigned char *rcontrol;  // batch * CONTROL_BYTES
  // Datagrams that waited longer than this in the receive queue are dropped unread (0: off).
  int64_t max_wait_ns;
  double stale;         // datagrams dropped so, since open
  // Send queue: answers copied into one arena, one mmsghdr each.
  unsigned char *arena;
  size_t arena_used;
  unsigned send_count;
  unsigned send_head;   // first not yet sent
  struct mmsghdr smsgs[SEND_MAX];
  struct iovec siov[SEND_MAX];
  struct sockaddr_storage saddr[SEND_MAX];
  double dropped;       // answers dropped because the queue was full and the socket would block
  struct batch_socket *next;
} batch_socket;

struct upstream_set;
typedef struct { batch_socket *open; struct upstream_set *upstreams; } addon_state;

static const char *errno_code(int err) { return uv_err_name(uv_translate_sys_error(err)); }

// An Error shaped as Node's own socket errors: .code 'EADDRINUSE', .syscall 'bind', .errno.
static napi_value make_error(napi_env env, int err, const char *syscall) {
  char text[160];
  snprintf(text, sizeof text, "%s %s", syscall, errno_code(err));
  napi_value msg, code, error, sys, num;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  napi_create_int32(env, -err, &num);
  napi_set_named_property(env, error, "errno", num);
  return error;
}

static void throw_errno(napi_env env, int err, const char *syscall) {
  napi_throw(env, make_error(env, err, syscall));
}

// Calls a JS callback from libuv; an exception it leaves goes to 'uncaughtException', as
// one from a dgram 'message' listener would.
// Calls the JS function behind `fn_ref` as a callback of `async` (so that promises and
// nextTicks it queues run after it); an exception it throws is the process's, as in any
// event callback.
static void make_callback(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_value fn, recv, result;
  if (fn_ref == NULL || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv);  // napi_make_callback needs an object as receiver
  if (napi_make_callback(env, async, recv, fn, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
}

static void call_js(batch_socket *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  make_callback(s->env, s->async, fn_ref, argc, argv);
}

static void report_error(batch_socket *s, int err, const char *syscall) {
  napi_handle_scope scope;
  napi_open_handle_scope(s->env, &scope);
  napi_value e = make_error(s->env, err, syscall);
  call_js(s, s->on_error, 1, &e);
  napi_close_handle_scope(s->env, scope);
}

static void set_events(batch_socket *s, int events);
static void on_poll(uv_poll_t *handle, int status, int events);

// Sends what is queued; returns how many are still queued. EAGAIN keeps the rest queued and
// waits for the socket to become writable; another error drops the one answer that failed.
static unsigned flush_sends(batch_socket *s) {
  while (s->send_head < s->send_count) {
    int n = sendmmsg(s->fd, s->smsgs + s->send_head, s->send_count - s->send_head, MSG_DONTWAIT);
    if (n > 0) {
      s->send_head += (unsigned)n;
      continue;
    }
    int err = n < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      if (!s->closing && !(s->events & UV_WRITABLE)) set_events(s, s->events | UV_WRITABLE);
      return s->send_count - s->send_head;
    }
    s->send_head++;  // this answer cannot go (e.g. EPERM from a firewall, EMSGSIZE): drop it
    report_error(s, err, "send");
  }
  s->send_count = s->send_head = 0;
  s->arena_used = 0;
  if (!s->closing && (s->events & UV_WRITABLE)) set_events(s, s->events & ~UV_WRITABLE);
  return 0;
}

static void set_events(batch_socket *s, int events) {
  s->events = events;
  uv_poll_start(&s->poll, events, on_poll);
}

static void read_batches(batch_socket *s) {
  for (int round = 0; round < MAX_BATCHES_PER_WAKE && !s->closing; round++) {
    for (unsigned i = 0; i < s->batch; i++) {
      s->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
      s->rmsgs[i].msg_hdr.msg_flags = 0;
      s->rmsgs[i].msg_len = 0;
      s->rmsgs[i].msg_hdr.msg_control = s->max_wait_ns > 0 ? s->rcontrol + (size_t)i * CONTROL_BYTES : NULL;
      s->rmsgs[i].msg_hdr.msg_controllen = s->max_wait_ns > 0 ? CONTROL_BYTES : 0;
    }
    int n = recvmmsg(s->fd, s->rmsgs, s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR) continue;
      report_error(s, err, "recvmmsg");
      return;
    }
    if (n == 0) return;
    // Under overload the receive queue holds seconds of queries whose clients have given up:
    // those are dropped here, unread by JavaScript, so that the fresh ones behind them are
    // answered while they are still wanted. The kernel stamps each datagram on arrival.
    int kept = n;
    if (s->max_wait_ns > 0) {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
      for (int i = 0; i < n; i++) {
        struct msghdr *h = &s->rmsgs[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
          if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
          struct timespec at;
          memcpy(&at, CMSG_DATA(c), sizeof at);
          if (now_ns - ((int64_t)at.tv_sec * 1000000000 + at.tv_nsec) > s->max_wait_ns) {
            s->rmsgs[i].msg_len = UINT32_MAX;  // marks it dropped below
            s->stale++;
            kept--;
          }
          break;
        }
      }
      if (kept == 0) {
        if ((unsigned)n < s->batch) return;
        continue;
      }
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) if (s->rmsgs[i].msg_len != UINT32_MAX) total += s->rmsgs[i].msg_len;
    napi_handle_scope scope;
    napi_open_handle_scope(s->env, &scope);
    napi_value argv[2];
    unsigned char *data = NULL;
    size_t offset = 0;
    if (pool_take(s->env, &s->pool, total, &argv[1], &data, &offset) != 0) {
      napi_close_handle_scope(s->env, scope);
      report_error(s, ENOMEM, "recvmmsg");
      return;
    }
    data -= offset;  // offsets below are the pool's
    for (int i = 0, j = 0; i < n; i++) {
      uint32_t len = s->rmsgs[i].msg_len;
      if (len == UINT32_MAX) continue;
      uint32_t *m = s->meta + (j++) * META_WORDS;
      memcpy((unsigned char *)data + offset, s->slots + (size_t)i * SLOT_BYTES, len);
      m[0] = (uint32_t)offset;
      m[1] = len;
      offset += len;
      struct sockaddr_storage *a = &s->raddr[i];
      if (a->ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)a;
        m[2] = ntohs(sin->sin_port);
        m[3] = 4;
        m[4] = ntohl(sin->sin_addr.s_addr);
        m[5] = m[6] = m[7] = 0;
      } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)a;
        m[2] = ntohs(sin6->sin6_port);
        m[3] = 6 | (sin6->sin6_scope_id << 8);  // link-local: the interface, as fe80::1%eth0
        memcpy(&m[4], &sin6->sin6_addr, 16);
      }
    }
    napi_create_uint32(s->env, (uint32_t)kept, &argv[0]);
    s->in_batch = 1;
    call_js(s, s->on_batch, 2, argv);
    s->in_batch = 0;
    napi_close_handle_scope(s->env, scope);
    if (!s->closing) flush_sends(s);
    if ((unsigned)n < s->batch) return;  // the queue is drained
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  batch_socket *s = (batch_socket *)handle->data;
  if (s->closing) return;
  if (status < 0) {
    // libuv reports errors as negated errno on Linux.
    report_error(s, -status, "poll");
    return;
  }
  if (events & UV_WRITABLE) flush_sends(s);
  if (events & UV_READABLE) read_batches(s);
}

static void free_socket(batch_socket *s) {
  free(s->slots);
  free(s->rmsgs);
  free(s->riov);
  free(s->raddr);
  free(s->rcontrol);
  free(s->arena);
  free(s);
}

static void unlink_open(napi_env env, batch_socket *s) {
  addon_state *st = NULL;
  napi_get_instance_data(env, (void **)&st);
  if (st == NULL) return;
  for (batch_socket **p = &st->open; *p != NULL; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      return;
    }
  }
}

static void on_closed(uv_handle_t *handle) {
  batch_socket *s = (batch_socket *)handle->data;
  napi_env env = s->env;
  close(s->fd);
  s->fd = -1;
  s->closed = 1;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_ref cb = s->on_close;
  s->on_close = NULL;
  if (cb != NULL) {
    call_js(s, cb, 0, NULL);
    napi_delete_reference(env, cb);
  }
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, s->on_batch);
  napi_delete_reference(env, s->on_error);
  napi_delete_reference(env, s->meta_ref);
  pool_release(env, &s->pool);
  napi_async_destroy(env, s->async);
  // The JS handle object may now be collected; its finalizer frees the struct.
  napi_ref self = s->self;
  s->self = NULL;
  napi_delete_reference(env, self);
}

static void start_close(batch_socket *s) {
  if (s->closing) return;
  // Closing first: an onError called from the flush below may call close() again.
  s->closing = 1;
  flush_sends(s);  // best effort: answers queued now still go out (not if the socket would block)
  unlink_open(s->env, s);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void finalize_socket(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  batch_socket *s = (batch_socket *)data;
  // Reached once closed (an open socket holds a strong reference to its handle object), or
  // at environment teardown: then the poll handle may still be known to the loop, so the
  // struct is left alone (the cleanup hook has closed the descriptor).
  if (s->closed) free_socket(s);
}

static batch_socket *unwrap(napi_env env, napi_value v) {
  batch_socket *s = NULL;
  if (napi_get_value_external(env, v, (void **)&s) != napi_ok) {
    napi_throw_type_error(env, NULL, "not a batch-udp socket handle");
    return NULL;
  }
  return s;
}

static int parse_address(int family, const char *text, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, text, &sin->sin_addr) != 1) return -1;
    *len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    const char *pct = strchr(text, '%');
    char host[64];
    if (pct != NULL) {
      size_t n = (size_t)(pct - text);
      if (n >= sizeof host) return -1;
      memcpy(host, text, n);
      host[n] = 0;
      sin6->sin6_scope_id = if_nametoindex(pct + 1);
      if (sin6->sin6_scope_id == 0) sin6->sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
      text = host;
    }
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) return -1;
    *len = sizeof *sin6;
  }
  return 0;
}

// open(family, host, port, reusePort, batch, bufferBytes, onBatch, onError)
//   -> { handle, meta: ArrayBuffer, port }  (throws an Error with .code on failure)
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 8) {
    napi_throw_type_error(env, NULL, "open(family, host, port, reusePort, batch, bufferBytes, onBatch, onError)");
    return NULL;
  }
  int32_t family = 0, batch = 0, buffer_bytes = 0;
  uint32_t port = 0;
  bool reuse = false;
  char host[64];
  size_t host_len = 0;
  napi_get_value_int32(env, argv[0], &family);
  napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len);
  napi_get_value_uint32(env, argv[2], &port);
  napi_get_value_bool(env, argv[3], &reuse);
  napi_get_value_int32(env, argv[4], &batch);
  napi_get_value_int32(env, argv[5], &buffer_bytes);
  if ((family != 4 && family != 6) || batch < 1 || batch > 1024 || port > 65535) {
    napi_throw_range_error(env, NULL, "family must be 4 or 6, batch 1..1024, port 0..65535");
    return NULL;
  }
  struct sockaddr_storage addr;
  socklen_t addr_len = 0;
  if (parse_address(family, host, port, &addr, &addr_len) != 0) {
    throw_errno(env, EINVAL, "bind");
    return NULL;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  int one = 1;
  // As listenUdp's ipv6Only: [::]:53 and 0.0.0.0:53 can both be listened on.
  if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "setsockopt");
    return NULL;
  }
  if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "bind");
    return NULL;
  }
  if (buffer_bytes > 0) {
    // The kernel caps these at net.core.[rw]mem_max; the default is still workable.
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bound_len);
  uint32_t bound_port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                          : ((struct sockaddr_in6 *)&bound)->sin6_port);

  batch_socket *s = calloc(1, sizeof *s);
  if (s != NULL) {
    s->slots = malloc((size_t)batch * SLOT_BYTES);
    s->rmsgs = calloc((size_t)batch, sizeof *s->rmsgs);
    s->riov = calloc((size_t)batch, sizeof *s->riov);
    s->raddr = calloc((size_t)batch, sizeof *s->raddr);
    s->rcontrol = calloc((size_t)batch, CONTROL_BYTES);
    s->arena = malloc(SEND_ARENA_BYTES);
  }
  if (s == NULL || !s->slots || !s->rmsgs || !s->riov || !s->raddr || !s->rcontrol || !s->arena) {
    if (s != NULL) free_socket(s);
    close(fd);
    throw_errno(env, ENOMEM, "open");
    return NULL;
  }
  s->fd = fd;
  s->family = family;
  s->env = env;
  s->batch = (unsigned)batch;
  for (unsigned i = 0; i < s->batch; i++) {
    s->riov[i].iov_base = s->slots + (size_t)i * SLOT_BYTES;
    s->riov[i].iov_len = SLOT_BYTES;
    s->rmsgs[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsgs[i].msg_hdr.msg_iovlen = 1;
    s->rmsgs[i].msg_hdr.msg_name = &s->raddr[i];
  }
  for (unsigned i = 0; i < SEND_MAX; i++) {
    s->smsgs[i].msg_hdr.msg_iov = &s->siov[i];
    s->smsgs[i].msg_hdr.msg_iovlen = 1;
    s->smsgs[i].msg_hdr.msg_name = &s->saddr[i];
  }

  napi_value meta, handle, result, port_value, resource_name;
  void *meta_data = NULL;
  napi_create_arraybuffer(env, (size_t)batch * META_WORDS * 4, &meta_data, &meta);
  s->meta = (uint32_t *)meta_data;
  napi_create_reference(env, meta, 1, &s->meta_ref);
  napi_create_reference(env, argv[6], 1, &s->on_batch);
  napi_create_reference(env, argv[7], 1, &s->on_error);
  napi_create_string_utf8(env, "sinkhole:batch-udp", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async);
  napi_create_external(env, s, finalize_socket, NULL, &handle);
  napi_create_reference(env, handle, 1, &s->self);

  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init_socket(loop, &s->poll, fd);
  s->poll.data = s;
  set_events(s, UV_READABLE);
  addon_state *st = NULL;
  napi_get_instance_data(env, (void **)&st);
  if (st != NULL) {
    s->next = st->open;
    st->open = s;
  }

  napi_create_object(env, &result);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "meta", meta);
  napi_create_uint32(env, bound_port, &port_value);
  napi_set_named_property(env, result, "port", port_value);
  return result;
}

// send(handle, answer: Buffer, address: string, port) -> 0 queued, 1 dropped (queue full
// and the socket would block), or a negative errno (bad address, answer too large).
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  batch_socket *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int32_t status = 0;
  void *data = NULL;
  size_t len = 0;
  char host[64];
  size_t host_len = 0;
  uint32_t port = 0;
  if (s->closing) status = -EBADF;
  else if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
           napi_get_value_string_latin1(env, argv[2], host, sizeof host, &host_len) != napi_ok ||
           napi_get_value_uint32(env, argv[3], &port) != napi_ok) {
    napi_throw_type_error(env, NULL, "send(handle, Buffer, address, port)");
    return NULL;
  } else if (len > SLOT_BYTES) status = -EMSGSIZE;
  else {
    if (s->send_count == SEND_MAX || s->arena_used + len > SEND_ARENA_BYTES) flush_sends(s);
    if (s->send_count == SEND_MAX || s->arena_used + len > SEND_ARENA_BYTES) {
      if (s->send_head > 0) {
        // Partly sent: keep the tail, move it to the front (rare: only after EAGAIN).
        unsigned left = s->send_count - s->send_head;
        size_t first = (size_t)((unsigned char *)s->siov[s->send_head].iov_base - s->arena);
        memmove(s->arena, s->arena + first, s->arena_used - first);
        for (unsigned i = 0; i < left; i++) {
          unsigned from = s->send_head + i;
          s->siov[i].iov_base = (unsigned char *)s->siov[from].iov_base - first;
          s->siov[i].iov_len = s->siov[from].iov_len;
          s->saddr[i] = s->saddr[from];
          s->smsgs[i].msg_hdr.msg_namelen = s->smsgs[from].msg_hdr.msg_namelen;
        }
        s->arena_used -= first;
        s->send_count = left;
        s->send_head = 0;
      }
    }
    if (s->send_count == SEND_MAX || s->arena_used + len > SEND_ARENA_BYTES) {
      s->dropped++;
      status = 1;
    } else {
      unsigned i = s->send_count;
      socklen_t alen = 0;
      if (parse_address(s->family, host, port, &s->saddr[i], &alen) != 0 || port > 65535) status = -EINVAL;
      else {
        memcpy(s->arena + s->arena_used, data, len);
        s->siov[i].iov_base = s->arena + s->arena_used;
        s->siov[i].iov_len = len;
        s->smsgs[i].msg_hdr.msg_namelen = alen;
        s->arena_used += len;
        s->send_count++;
      }
    }
  }
  napi_create_int32(env, status, &result);
  return result;
}

// flush(handle) -> answers still queued (waiting for the socket to become writable)
static napi_value js_flush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  batch_socket *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  unsigned left = s->closing ? 0 : flush_sends(s);
  napi_create_uint32(env, left, &result);
  return result;
}

// close(handle, onClosed): queued answers are sent, then the socket closes.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  batch_socket *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  if (!s->closing) {
    if (argc > 1) napi_create_reference(env, argv[1], 1, &s->on_close);
    start_close(s);
  }
  return NULL;
}

// stats(handle) -> { dropped, queued }
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  batch_socket *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  napi_create_object(env, &result);
  napi_create_double(env, s->dropped, &v);
  napi_set_named_property(env, result, "dropped", v);
  napi_create_uint32(env, s->send_count - s->send_head, &v);
  napi_set_named_property(env, result, "queued", v);
  napi_create_double(env, s->stale, &v);
  napi_set_named_property(env, result, "stale", v);
  return result;
}

// setMaxWait(handle, ms): datagrams that waited longer than ms in the receive queue are
// dropped unread and counted (stats().stale); 0 turns it off. Returns false when the kernel
// will not timestamp datagrams (then nothing is dropped).
static napi_value js_set_max_wait(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  batch_socket *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  double ms = 0;
  napi_get_value_double(env, argv[1], &ms);
  int on = ms > 0 ? 1 : 0;
  bool ok = setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
  s->max_wait_ns = ok && on ? (int64_t)(ms * 1e6) : 0;
  napi_get_boolean(env, ok, &result);
  return result;
}

// interfaceName(index) -> "eth0", or the index as text when there is no such interface
// (what libuv's uv_if_indextoiid gives dgram for a link-local source address).
static napi_value js_interface_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t index = 0;
  napi_get_value_uint32(env, argv[0], &index);
  char name[IF_NAMESIZE + 1];
  if (if_indextoname(index, name) == NULL) snprintf(name, sizeof name, "%u", index);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &result);
  return result;
}

// idleThread() -> 0, or a negated errno: the calling thread (a worker thread's own) is put in
// the SCHED_IDLE class. Node can only renice (os.setPriority); a nice-19 thread still keeps the
// core for the rest of its slice when the DNS thread wakes (EEVDF), an idle-class thread is
// preempted at once and runs only when nothing else would. An unprivileged thread may move
// itself there (sched(7)).
static napi_value js_idle_thread(napi_env env, napi_callback_info info) {
  (void)info;
  struct sched_param param = {0};
  int rc = sched_setscheduler(0, SCHED_IDLE, &param) == 0 ? 0 : -errno;
  napi_value result;
  napi_create_int32(env, rc, &result);
  return result;
}

// ---- Upstream sockets: the forwarder's one-socket-per-query UDP (RFC 5452), without a
// node:dgram Socket (a JS object, an EventEmitter, a libuv handle and two epoll_ctl) per
// query. JS opens a socket bound to a random port (upSocket), connects and sends on it
// (upConnectSend), and closes it (upCloseSocket) or readies it for the next query on a new
// random port (upRecycle); each socket is added to one private epoll
// set, itself watched by one uv_poll_t, and the answers that arrived on any of them are
// handed to JS in one call: onAnswers(count, payloads) (a pool Buffer, see payload_pool) with `meta` holding per answer
// UP_META_WORDS int32: the socket (fd), the length (or a negated errno: ICMP errors such as
// ECONNREFUSED on a connected socket), the offset in payloads. A datagram whose source is not
// the socket's connected peer (or that arrived before the connect) is dropped here.
#define UP_META_WORDS 3
#define UP_EVENTS 256
#define UP_ARENA_BYTES (512 * 1024)

// Datagrams read from one socket per wake-up at most: with --upstream-port-reuse a socket
// carries many queries, and their answers queue on it between two turns of the event loop.
#define UP_READS_PER_SOCKET 32

// By fd: `open` while the set owns it (a number JS closed may be reused by any descriptor of
// the process); `len` 0 until connected; `unanswered`: queries sent on it less datagrams read
// (more than one: worth reading again before the next wake-up; a query JS gave up on keeps it
// high, which costs one read that finds nothing).
typedef struct { struct sockaddr_storage addr; socklen_t len; int open; unsigned unanswered; } up_peer;

typedef struct upstream_set {
  uv_poll_t poll;
  int epfd;
  int closing;
  int closed;
  napi_env env;
  napi_ref self;
  napi_ref on_answers;
  napi_ref meta_ref;
  napi_async_context async;
  int32_t *meta;
  unsigned char *arena;
  payload_pool pool;
  up_peer *peers;   // by fd; len 0: not connected
  int peers_cap;
  struct upstream_set *next;
} upstream_set;

// Whether fd is a socket the set holds for JS (opened by upSocket, not closed since).
static int up_holds(const upstream_set *u, int32_t fd) {
  return fd >= 0 && fd < u->peers_cap && u->peers[fd].open;
}

static void up_deliver(upstream_set *u, unsigned count, size_t used) {
  if (count == 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(u->env, &scope);
  napi_value argv[2];
  unsigned char *data = NULL;
  size_t base = 0;
  if (pool_take(u->env, &u->pool, used, &argv[1], &data, &base) == 0) {
    if (used > 0) memcpy(data, u->arena, used);
    // The offsets were the arena's; JS reads the pool.
    for (unsigned i = 0; i < count; i++) u->meta[i * UP_META_WORDS + 2] += (int32_t)base;
    napi_create_uint32(u->env, count, &argv[0]);
    make_callback(u->env, u->async, u->on_answers, 2, argv);
  }
  napi_close_handle_scope(u->env, scope);
}

static int same_peer(const up_peer *p, const struct sockaddr_storage *from) {
  if (p->len == 0 || p->addr.ss_family != from->ss_family) return 0;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&p->addr, *b = (const struct sockaddr_in *)from;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->addr, *b = (const struct sockaddr_in6 *)from;
  return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
}

static void up_on_poll(uv_poll_t *handle, int status, int events) {
  upstream_set *u = (upstream_set *)handle->data;
  if (u->closing || status < 0) return;
  struct epoll_event ev[UP_EVENTS];
  int n = epoll_wait(u->epfd, ev, UP_EVENTS, 0);
  unsigned count = 0;
  size_t used = 0;
  for (int i = 0; i < n && !u->closing; i++) {
    int fd = ev[i].data.fd;
    if (!up_holds(u, fd)) continue;
    // One datagram per socket and wake-up when it carries one query (the default: a fresh
    // socket per query; a second read would only find nothing), up to UP_READS_PER_SOCKET
    // when more are unanswered; level-triggered, so what is left comes next turn.
    unsigned reads = u->peers[fd].unanswered > 1 ? u->peers[fd].unanswered : 1;
    if (reads > UP_READS_PER_SOCKET) reads = UP_READS_PER_SOCKET;
    for (unsigned r = 0; r < reads; r++) {
      if (count == UP_EVENTS || UP_ARENA_BYTES - used < SLOT_BYTES) {
        up_deliver(u, count, used);
        count = 0;
        used = 0;
        // JS may have closed this socket (or the set) while handling what was delivered.
        if (u->closing || !u->peers[fd].open) break;
      }
      struct sockaddr_storage from;
      socklen_t from_len = sizeof from;
      ssize_t len = recvfrom(fd, u->arena + used, SLOT_BYTES, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
      int32_t *m = u->meta + count * UP_META_WORDS;
      if (len < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) break;
        m[0] = fd;
        m[1] = -err;
        m[2] = (int32_t)used;
        count++;
        break;
      }
      if (u->peers[fd].unanswered > 0) u->peers[fd].unanswered--;
      if (!same_peer(&u->peers[fd], &from)) continue;  // spoofed, stale, or before the connect
      m[0] = fd;
      m[1] = (int32_t)len;
      m[2] = (int32_t)used;
      used += (size_t)len;
      count++;
    }
  }
  if (!u->closing) up_deliver(u, count, used);
}

static upstream_set *up_unwrap(napi_env env, napi_value v) {
  upstream_set *u = NULL;
  if (napi_get_value_external(env, v, (void **)&u) != napi_ok || u == NULL) {
    napi_throw_type_error(env, NULL, "not an upstream socket set");
    return NULL;
  }
  return u;
}

static void up_free(upstream_set *u) {
  free(u->arena);
  free(u->peers);
  free(u);
}

static void up_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  upstream_set *u = (upstream_set *)data;
  if (u->closed) up_free(u);
}

// upOpen(onAnswers) -> { handle, meta: ArrayBuffer }
static napi_value js_up_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    throw_errno(env, errno, "epoll_create1");
    return NULL;
  }
  upstream_set *u = calloc(1, sizeof *u);
  if (u != NULL) u->arena = malloc(UP_ARENA_BYTES);
  if (u == NULL || u->arena == NULL) {
    if (u != NULL) up_free(u);
    close(epfd);
    throw_errno(env, ENOMEM, "upOpen");
    return NULL;
  }
  u->epfd = epfd;
  u->env = env;
  napi_value meta, handle, result, resource_name;
  void *meta_data = NULL;
  napi_create_arraybuffer(env, (size_t)UP_EVENTS * UP_META_WORDS * 4, &meta_data, &meta);
  u->meta = (int32_t *)meta_data;
  napi_create_reference(env, meta, 1, &u->meta_ref);
  napi_create_reference(env, argv[0], 1, &u->on_answers);
  napi_create_string_utf8(env, "sinkhole:upstream-udp", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &u->async);
  napi_create_external(env, u, up_finalize, NULL, &handle);
  napi_create_reference(env, handle, 1, &u->self);
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &u->poll, epfd);
  u->poll.data = u;
  uv_poll_start(&u->poll, UV_READABLE, up_on_poll);
  // As the dgram sockets it replaces (unref'd): queries in flight do not keep a process alive.
  uv_unref((uv_handle_t *)&u->poll);
  addon_state *st = NULL;
  napi_get_instance_data(env, (void **)&st);
  if (st != NULL) {
    u->next = st->upstreams;
    st->upstreams = u;
  }
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "meta", meta);
  return result;
}

static napi_value int_result(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

// upSocket(handle, family) -> fd, or a negated errno (EMFILE...): a UDP socket watched by the
// set, not bound: its first connect (upConnectSend) binds it to a port the kernel picks at
// random, the same choice as a bind to port 0 (Linux: inet_autobind -> get_port(0)), so an
// explicit bind would be one more system call per query for nothing. Until that connect it
// has no port: nothing can arrive on it.
static napi_value js_up_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  upstream_set *u = up_unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  int32_t family = 4;
  napi_get_value_int32(env, argv[1], &family);
  if (u->closing) return int_result(env, -EBADF);
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_result(env, -errno);
  struct epoll_event ev = { .events = EPOLLIN, .data = { .fd = fd } };
  if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    close(fd);
    return int_result(env, -err);
  }
  if (fd >= u->peers_cap) {
    int cap = u->peers_cap == 0 ? 1024 : u->peers_cap;
    while (cap <= fd) cap *= 2;
    up_peer *peers = realloc(u->peers, (size_t)cap * sizeof *peers);
    if (peers == NULL) {
      close(fd);
      return int_result(env, -ENOMEM);
    }
    memset(peers + u->peers_cap, 0, (size_t)(cap - u->peers_cap) * sizeof *peers);
    u->peers = peers;
    u->peers_cap = cap;
  }
  u->peers[fd].len = 0;
  u->peers[fd].open = 1;
  u->peers[fd].unanswered = 0;
  u->peers[fd].addr.ss_family = family == 6 ? AF_INET6 : AF_INET;  // for the connect: no getsockname
  return int_result(env, fd);
}

// upConnectSend(handle, fd, host, port, msg: Buffer | null) -> 0, or a negated errno with
// 1000 added for a failed connect (ENETUNREACH, EINVAL for a blackhole route...) and 2000 for
// a failed send. msg null: only connect.
static napi_value js_up_connect_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  upstream_set *u = up_unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  int32_t fd = -1;
  uint32_t port = 0;
  char host[64];
  size_t host_len = 0;
  napi_get_value_int32(env, argv[1], &fd);
  if (!up_holds(u, fd)) return int_result(env, -(1000 + EBADF));
  if (argc > 3 && napi_get_value_string_latin1(env, argv[2], host, sizeof host, &host_len) == napi_ok &&
      napi_get_value_uint32(env, argv[3], &port) == napi_ok) {
    struct sockaddr_storage to;
    socklen_t to_len = 0;
    int family = u->peers[fd].addr.ss_family == AF_INET6 ? 6 : 4;
    if (port > 65535 || parse_address(family, host, port, &to, &to_len) != 0) return int_result(env, -(1000 + EINVAL));
    if (connect(fd, (struct sockaddr *)&to, to_len) != 0) return int_result(env, -(1000 + errno));
    u->peers[fd].addr = to;
    u->peers[fd].len = to_len;
  }
  void *data = NULL;
  size_t len = 0;
  napi_valuetype type;
  napi_typeof(env, argv[4], &type);
  if (argc > 4 && type == napi_object && napi_get_buffer_info(env, argv[4], &data, &len) == napi_ok) {
    if (send(fd, data, len, MSG_DONTWAIT) < 0) return int_result(env, -(2000 + errno));
    u->peers[fd].unanswered++;
  }
  return int_result(env, 0);
}

// The arguments (handle, fd) of upCloseSocket and upRecycle: the set (NULL with a JS error
// thrown), and the fd in *fd (-1 when it is not a number).
static upstream_set *up_fd_args(napi_env env, napi_callback_info info, int32_t *fd) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  upstream_set *u = up_unwrap(env, argv[0]);
  *fd = -1;
  if (u != NULL && napi_get_value_int32(env, argv[1], fd) != napi_ok) *fd = -1;
  return u;
}

// upCloseSocket(handle, fd): closing the descriptor takes it out of the epoll set too.
static napi_value js_up_close_socket(napi_env env, napi_callback_info info) {
  int32_t fd;
  upstream_set *u = up_fd_args(env, info, &fd);
  if (u == NULL) return NULL;
  if (up_holds(u, fd)) {
    u->peers[fd].open = 0;
    u->peers[fd].len = 0;
    u->peers[fd].addr.ss_family = AF_UNSPEC;
    close(fd);
  }
  return NULL;
}

// Drain reads at most per recycled socket: more is a flood, and the socket is closed instead.
#define UP_DRAIN_READS 64

// upRecycle(handle, fd) -> 0, or a negated errno (the caller closes the socket then): makes a
// socket whose queries are done ready for the next query without closing it. A connect to
// AF_UNSPEC dissolves the association and, as the port was picked by the kernel (no bind),
// releases the port too (Linux __udp_disconnect: unhash, source port 0). The next connect
// picks a new random port, the same choice as for a new socket (RFC 5452 is unchanged), and
// the socket stays in the epoll set. What was left queued on the old port (a duplicate or
// late answer, a forged datagram) is read and thrown away here, so the next query never sees
// it. Per query this replaces socket, epoll_ctl and close (the file, inode and memcg work of
// a new descriptor: a fifth of W4's CPU) with this connect and one read that finds nothing.
static napi_value js_up_recycle(napi_env env, napi_callback_info info) {
  int32_t fd;
  upstream_set *u = up_fd_args(env, info, &fd);
  if (u == NULL) return NULL;
  if (u->closing || !up_holds(u, fd)) return int_result(env, -EBADF);
  struct sockaddr unspec;
  memset(&unspec, 0, sizeof unspec);
  unspec.sa_family = AF_UNSPEC;
  if (connect(fd, &unspec, sizeof unspec) != 0) return int_result(env, -errno);
  int drained = 0;
  for (int i = 0; i < UP_DRAIN_READS && !drained; i++) {
    unsigned char byte;
    // A pending ICMP error is returned (and cleared) by a read too; keep reading past it.
    if (recv(fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) drained = 1;
  }
  if (!drained) return int_result(env, -EBUSY);
  int family = u->peers[fd].addr.ss_family;
  memset(&u->peers[fd].addr, 0, sizeof u->peers[fd].addr);
  u->peers[fd].addr.ss_family = (sa_family_t)family;
  u->peers[fd].len = 0;
  u->peers[fd].unanswered = 0;
  return int_result(env, 0);
}

static void up_unlink(napi_env env, upstream_set *u) {
  addon_state *st = NULL;
  napi_get_instance_data(env, (void **)&st);
  if (st == NULL) return;
  for (upstream_set **p = &st->upstreams; *p != NULL; p = &(*p)->next) {
    if (*p == u) {
      *p = u->next;
      return;
    }
  }
}

static void up_on_closed(uv_handle_t *handle) {
  upstream_set *u = (upstream_set *)handle->data;
  napi_env env = u->env;
  close(u->epfd);
  u->epfd = -1;
  u->closed = 1;
  napi_delete_reference(env, u->on_answers);
  napi_delete_reference(env, u->meta_ref);
  pool_release(env, &u->pool);
  napi_async_destroy(env, u->async);
  napi_ref self = u->self;
  u->self = NULL;
  napi_delete_reference(env, self);
}

// upClose(handle): stops watching (the sockets are the caller's to close first).
static napi_value js_up_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  upstream_set *u = up_unwrap(env, argv[0]);
  if (u == NULL || u->closing) return NULL;
  u->closing = 1;
  up_unlink(env, u);
  uv_poll_stop(&u->poll);
  uv_close((uv_handle_t *)&u->poll, up_on_closed);
  return NULL;
}

static void cleanup_env(void *arg) {
  addon_state *st = (addon_state *)arg;
  // Environment teardown (a worker thread ending) with sockets still open: stop polling and
  // close the descriptors; the handle objects' finalizers free the rest.
  for (batch_socket *s = st->open; s != NULL; s = s->next) {
    s->closing = 1;
    uv_poll_stop(&s->poll);
    close(s->fd);
    s->fd = -1;
  }
  st->open = NULL;
  for (upstream_set *u = st->upstreams; u != NULL; u = u->next) {
    u->closing = 1;
    uv_poll_stop(&u->poll);
    close(u->epfd);
    u->epfd = -1;
  }
  st->upstreams = NULL;
}

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

NAPI_MODULE_INIT() {
  addon_state *st = calloc(1, sizeof *st);
  napi_set_instance_data(env, st, finalize_state, NULL);
  napi_add_env_cleanup_hook(env, cleanup_env, st);
  napi_property_descriptor props[] = {
    {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
    {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
    {"flush", NULL, js_flush, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
    {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
    {"setMaxWait", NULL, js_set_max_wait, NULL, NULL, NULL, napi_default, NULL},
    {"interfaceName", NULL, js_interface_name, NULL, NULL, NULL, napi_default, NULL},
    {"idleThread", NULL, js_idle_thread, NULL, NULL, NULL, napi_default, NULL},
    {"upOpen", NULL, js_up_open, NULL, NULL, NULL, napi_default, NULL},
    {"upSocket", NULL, js_up_socket, NULL, NULL, NULL, napi_default, NULL},
    {"upConnectSend", NULL, js_up_connect_send, NULL, NULL, NULL, napi_default, NULL},
    {"upCloseSocket", NULL, js_up_close_socket, NULL, NULL, NULL, napi_default, NULL},
    {"upRecycle", NULL, js_up_recycle, NULL, NULL, NULL, napi_default, NULL},
    {"upClose", NULL, js_up_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value words;
  napi_create_uint32(env, META_WORDS, &words);
  napi_set_named_property(env, exports, "metaWords", words);
  return exports;
}
