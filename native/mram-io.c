// Optional native helper of PageAreaFile (Node-API, so one build serves every Node version): a
// positioned write without fs.writeSync's per-call cost (about 2.5 µs over pwrite for one 4 KiB
// page), and posix_fadvise(DONTNEED), which Node lacks. mram works without it (slower): see
// src/io/native.ts. Built by scripts/build-native.sh into prebuilds/linux-x64/mram-io.node.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

// Throws an Error shaped as Node's fs errors are: code ENOSPC, message "ENOSPC: no space left on device, write".
static napi_value fail(napi_env env, int err, const char *call) {
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
  napi_throw(env, e);
  return NULL;
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
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(fd, (const char *)data + done, len - done, (off_t)pos + (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(env, errno, "write");
    if (n == 0) return fail(env, EIO, "write");
    done += (size_t)n;
  }
  return NULL;
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
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, DropCache, NULL, &f);
  napi_set_named_property(env, exports, "dropCache", f);
  return exports;
}
