// Optional native helper of PageAreaFile (Node-API, so one build serves every Node version): a
// positioned write without fs.writeSync's per-call cost (about 2.5 µs over pwrite for one 4 KiB
// page), a batch of such writes done on libuv's thread pool (the write calls of a scattered guest
// were most of the main thread's time), and posix_fadvise(DONTNEED), which Node lacks. mram works
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

// pwrite(fd, bytes: Uint8Array, position): writes all of bytes at position (short writes retried).
static napi_value Pwrite(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  int32_t fd;
  double pos;
  napi_typedarray_type type;
  size_t len, off;
  void *data;
  napi_value ab;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[2], &pos) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "pwrite(fd, Uint8Array, position)");
    return NULL;
  }
  int err = write_all(fd, data, len, (off_t)pos);
  return err ? fail(env, err, "write") : NULL;
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
  napi_value result;
  if (b->err) napi_reject_deferred(env, b->deferred, make_error(env, b->err, "write"));
  else {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, b->deferred, result);
  }
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
  napi_value promise, name;
  napi_create_promise(env, &b->deferred, &promise);
  napi_create_reference(env, argv[1], 1, &b->bytes);
  napi_create_string_utf8(env, "mram-io pwriteRuns", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, batch_execute, batch_complete, b, &b->work);
  napi_queue_async_work(env, b->work);
  return promise;
}

// dropCache(fd, offset, length): posix_fadvise(POSIX_FADV_DONTNEED) of that range (length 0: to the end).
static napi_value DropCache(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv)) return NULL;
  int32_t fd;
  double off, len;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "dropCache(fd, offset, length)");
    return NULL;
  }
  int err = posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
  return err ? fail(env, err, "fadvise") : NULL;
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "pwrite", NAPI_AUTO_LENGTH, Pwrite, NULL, &f);
  napi_set_named_property(env, exports, "pwrite", f);
  napi_create_function(env, "pwriteRuns", NAPI_AUTO_LENGTH, PwriteRuns, NULL, &f);
  napi_set_named_property(env, exports, "pwriteRuns", f);
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, DropCache, NULL, &f);
  napi_set_named_property(env, exports, "dropCache", f);
  return exports;
}
