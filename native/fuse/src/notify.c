// Cache invalidation pushed to the kernel. These writes can block inside the kernel until a
// request we are serving completes (inval_entry takes the parent's inode lock), so they run on
// the libuv pool and settle a promise, never on the JS thread that has to answer that request.
#include "addon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  session *s;
  int entry;
  fuse_ino_t ino;
  int64_t off, len;
  char *name;
  size_t namelen;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} notify_job;

static void execute(napi_env env, void *data) {
  notify_job *j = data;
  session *s = j->s;
  pthread_rwlock_rdlock(&s->alive_lock);
  if (!s->alive)
    j->err = -ENOTCONN;
  else if (j->entry)
    j->err = fuse_lowlevel_notify_inval_entry(s->se, j->ino, j->name, j->namelen);
  else
    j->err = fuse_lowlevel_notify_inval_inode(s->se, j->ino, j->off, j->len);
  pthread_rwlock_unlock(&s->alive_lock);
}

static void complete(napi_env env, napi_status status, void *data) {
  notify_job *j = data;
  napi_value v;
  if (status == napi_ok && j->err == 0) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    // ENOENT only means the kernel had nothing cached for it: not an error to the caller.
    int err = status == napi_ok ? -j->err : ECANCELED;
    if (err == ENOENT) {
      napi_get_undefined(env, &v);
      napi_resolve_deferred(env, j->deferred, v);
    } else {
      napi_value code, message;
      napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &message);
      napi_create_int32(env, err, &code);
      napi_create_error(env, NULL, message, &v);
      napi_set_named_property(env, v, "errno", code);
      napi_reject_deferred(env, j->deferred, v);
    }
  }
  napi_delete_async_work(env, j->work);
  session_unref(j->s);
  free(j->name);
  free(j);
}

static napi_value start(napi_env env, notify_job *j) {
  napi_value promise, name;
  session_ref(j->s);
  napi_create_string_utf8(env, "stitchfs-fuse-notify", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    session_unref(j->s);
    free(j->name);
    free(j);
    napi_throw_error(env, NULL, "cannot queue the notification");
    return NULL;
  }
  return promise;
}

// notifyInvalInode(handle, ino, offset, length) -> Promise<void>; length 0 = to the end,
// offset < 0 = attributes only.
static napi_value js_inval_inode(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  double ino = 0, off = 0, len = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session *s = argc > 0 ? session_from(env, argv[0]) : NULL;
  if (!s) return NULL;
  if (argc < 2 || napi_get_value_double(env, argv[1], &ino) != napi_ok) {
    napi_throw_type_error(env, NULL, "notifyInvalInode(handle, ino, offset, length)");
    return NULL;
  }
  if (argc > 2) napi_get_value_double(env, argv[2], &off);
  if (argc > 3) napi_get_value_double(env, argv[3], &len);
  notify_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->s = s;
  j->ino = (fuse_ino_t)ino;
  j->off = (int64_t)off;
  j->len = (int64_t)len;
  return start(env, j);
}

// notifyInvalEntry(handle, parentIno, name) -> Promise<void>
static napi_value js_inval_entry(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3];
  double parent = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session *s = argc > 0 ? session_from(env, argv[0]) : NULL;
  if (!s) return NULL;
  if (argc < 3 || napi_get_value_double(env, argv[1], &parent) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "notifyInvalEntry(handle, parentIno, name)");
    return NULL;
  }
  notify_job *j = calloc(1, sizeof *j);
  if (!j || !(j->name = malloc(len + 1))) {
    free(j);
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[2], j->name, len + 1, &len);
  j->s = s;
  j->entry = 1;
  j->ino = (fuse_ino_t)parent;
  j->namelen = len;
  return start(env, j);
}

napi_status notify_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"notifyInvalInode", NULL, js_inval_inode, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notifyInvalEntry", NULL, js_inval_entry, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof *props, props);
}
