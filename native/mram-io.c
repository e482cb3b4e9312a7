// Optional native helper of PageAreaFile (Node-API, so one build serves every Node version): batches
// of positioned writes done on libuv's thread pool (the write calls of a scattered guest were most of
// the main thread's time, and fs.writeSync costs about 2.5 µs over pwrite per 4 KiB page), and the
// write-back of one range by sync_file_range and posix_fadvise(DONTNEED), which Node lacks. mram works
// without it (slower): see src/io/native.ts. Built by scripts/build-native.sh into
// prebuilds/linux-x64/mram-io.node.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

// Throws an Error shaped as Node's fs errors are: code ENOSPC, message "ENOSPC: no space left on device, write".
static napi_value make_error(napi_env env, int err, const char *call) {
  const char *name = strerrorname_np(err);
  char text[256];
  snprintf(text, sizeof text, "%s: %s, %s", name ? name : "EIO", strerror(err), call);
  char *desc = strchr(text, ' ');
  if (desc && desc[1] >= 'A' && desc[1] <= 'Z') desc[1] += 'a' - 'A';
  napi_value code, msg, e;
  napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &e);
  napi_value errnum;
  napi_create_int32(env, -err, &errnum);
  napi_set_named_property(env, e, "errno", errnum);
  return e;
}

static napi_value fail(napi_env env, int err, const char *call) {
  napi_throw(env, make_error(env, err, call));
  return NULL;
}

// Settles a thread-pool call's promise: resolved, or rejected with errno err from call.
static void settle(napi_env env, napi_deferred deferred, int err, const char *call) {
  if (err) {
    napi_reject_deferred(env, deferred, make_error(env, err, call));
    return;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_resolve_deferred(env, deferred, undefined);
}

// Queues execute on libuv's thread pool, then complete on the main thread; returns the promise complete settles.
static napi_value queue(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete,
                        void *data, napi_async_work *work, napi_deferred *deferred) {
  napi_value promise, id;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &id);
  napi_create_async_work(env, NULL, id, execute, complete, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}

// Writes all of [p, p + len) at pos (short writes continued); 0 or an errno.
static int write_all(int fd, const char *p, size_t len, off_t pos) {
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(fd, p + done, len - done, pos + (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    done += (size_t)n;
  }
  return 0;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return 0;
  }
  return 1;
}

// The (fd, offset, length > 0) arguments of a call on a file range; 0 (a TypeError thrown, naming `usage`) if they are not.
static int fd_range(napi_env env, napi_callback_info info, const char *usage, int32_t *fd, double *off, double *len) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return 0;
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok || napi_get_value_double(env, argv[1], off) != napi_ok ||
      napi_get_value_double(env, argv[2], len) != napi_ok || !(*off >= 0 && *len > 0)) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

// One pwriteRuns call: the runs are copied, the bytes are held by a reference until the writes are done.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref bytes;
  int fd;
  const char *data;
  size_t length;
  double *runs;
  size_t count;
  int err;
} Batch;

static void batch_execute(napi_env env, void *arg) {
  Batch *b = arg;
  for (size_t i = 0; i < b->count && !b->err; i++) {
    double start = b->runs[3 * i], end = b->runs[3 * i + 1], pos = b->runs[3 * i + 2];
    if (!(start >= 0 && start <= end && end <= (double)b->length && pos >= 0)) b->err = EINVAL;
    else b->err = write_all(b->fd, b->data + (size_t)start, (size_t)(end - start), (off_t)pos);
  }
}

static void batch_complete(napi_env env, napi_status status, void *arg) {
  Batch *b = arg;
  settle(env, b->deferred, b->err, "write");
  napi_delete_reference(env, b->bytes);
  napi_delete_async_work(env, b->work);
  free(b->runs);
  free(b);
}

// pwriteRuns(fd, bytes: Uint8Array, runs: Float64Array of [start, end, position] triples): Promise<void>.
// Writes bytes[start, end) at each position on a thread-pool thread, in order; rejects with the first errno.
static napi_value PwriteRuns(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  int32_t fd;
  napi_typedarray_type type, rtype;
  size_t len, off, rlen, roff;
  void *data, *rdata;
  napi_value ab, rab;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[2], &rtype, &rlen, &rdata, &rab, &roff) != napi_ok || rtype != napi_float64_array || rlen % 3) {
    napi_throw_type_error(env, NULL, "pwriteRuns(fd, Uint8Array, Float64Array of [start, end, position])");
    return NULL;
  }
  Batch *b = calloc(1, sizeof *b);
  if (!b || !(b->runs = malloc(rlen ? rlen * sizeof(double) : 1))) {
    free(b);
    return fail(env, ENOMEM, "write");
  }
  memcpy(b->runs, rdata, rlen * sizeof(double));
  b->fd = fd;
  b->data = data;
  b->length = len;
  b->count = rlen / 3;
  napi_create_reference(env, argv[1], 1, &b->bytes);
  return queue(env, "mram-io pwriteRuns", batch_execute, batch_complete, b, &b->work, &b->deferred);
}

// One writeBack call: the range written back, then dropped; the first errno.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  off_t offset, length;
  int err;
  const char *call;
} WriteBack;

static void writeback_execute(napi_env env, void *arg) {
  WriteBack *w = arg;
  // Only this range, unlike fdatasync, which also starts on the window still being written and
  // contends with those writes; durability is still the caller's final fdatasync.
  if (sync_file_range(w->fd, w->offset, w->length, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)) {
    w->err = errno;
    w->call = "sync_file_range";
  } else if ((w->err = posix_fadvise(w->fd, w->offset, w->length, POSIX_FADV_DONTNEED))) {
    w->call = "fadvise";
  }
}

static void writeback_complete(napi_env env, napi_status status, void *arg) {
  WriteBack *w = arg;
  settle(env, w->deferred, w->err, w->call);
  napi_delete_async_work(env, w->work);
  free(w);
}

// writeBack(fd, offset, length): Promise<void>. On a thread-pool thread: writes that range's dirty
// pages back and waits for them (sync_file_range), then drops them from the page cache (DONTNEED).
static napi_value WriteBackRange(napi_env env, napi_callback_info info) {
  int32_t fd;
  double off, len;
  // Length 0 would mean "to the end of the file" to sync_file_range: never what a window asks.
  if (!fd_range(env, info, "writeBack(fd, offset, length > 0)", &fd, &off, &len)) return NULL;
  WriteBack *w = calloc(1, sizeof *w);
  if (!w) return fail(env, ENOMEM, "sync_file_range");
  w->fd = fd;
  w->offset = (off_t)off;
  w->length = (off_t)len;
  return queue(env, "mram-io writeBack", writeback_execute, writeback_complete, w, &w->work, &w->deferred);
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "pwriteRuns", NAPI_AUTO_LENGTH, PwriteRuns, NULL, &f);
  napi_set_named_property(env, exports, "pwriteRuns", f);
  napi_create_function(env, "writeBack", NAPI_AUTO_LENGTH, WriteBackRange, NULL, &f);
  napi_set_named_property(env, exports, "writeBack", f);
  return exports;
}
