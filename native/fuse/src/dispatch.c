// The JS side of the threadsafe function: one call of the JS dispatcher per message, with the
// request as a tagged External. The External owns the message from then on, so a request that JS
// drops without answering is still answered (EIO) when it is collected.
#include "addon.h"

#include <errno.h>
#include <stdlib.h>

static int msg_pending(msg *m) {
  pthread_mutex_lock(&m->s->lock);
  int pending = m->req != NULL;
  pthread_mutex_unlock(&m->s->lock);
  return pending;
}

static const napi_type_tag REQ_TAG = {0x5f1c7a3e9b2d4c01ULL, 0x8e4f6a2b1d3c5e07ULL};

msg *msg_from(napi_env env, napi_value v) {
  bool ok = false;
  void *p = NULL;
  if (napi_check_object_type_tag(env, v, &REQ_TAG, &ok) != napi_ok || !ok) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

// The last resort against a request JS dropped without answering: the kernel gets EIO at GC.
static void req_finalize(napi_env env, void *data, void *hint) {
  msg *m = data;
  msg_fail(m, EIO);
  msg_free(m);
}

static void free_data(napi_env env, void *data, void *hint) {
  free(data);
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value str(napi_env env, const char *s) {
  napi_value r;
  if (!s) napi_get_undefined(env, &r);
  else napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}

static double ms(struct timespec t) {
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void set(napi_env env, napi_value obj, const char *key, double v) {
  napi_set_named_property(env, obj, key, num(env, v));
}

static napi_value setattr_changes(napi_env env, msg *m) {
  napi_value o;
  napi_create_object(env, &o);
  int t = m->to_set;
  if (t & FUSE_SET_ATTR_MODE) set(env, o, "mode", m->st.st_mode);
  if (t & FUSE_SET_ATTR_UID) set(env, o, "uid", m->st.st_uid);
  if (t & FUSE_SET_ATTR_GID) set(env, o, "gid", m->st.st_gid);
  if (t & FUSE_SET_ATTR_SIZE) set(env, o, "size", m->st.st_size);
  if (t & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) set(env, o, "atimeMs", ms(m->st.st_atim));
  if (t & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) set(env, o, "mtimeMs", ms(m->st.st_mtim));
  if (t & FUSE_SET_ATTR_CTIME) set(env, o, "ctimeMs", ms(m->st.st_ctim));
  return o;
}

static napi_value forget_list(napi_env env, msg *m) {
  napi_value arr;
  napi_create_array_with_length(env, m->nforgets * 2, &arr);
  for (size_t i = 0; i < m->nforgets; i++) {
    napi_set_element(env, arr, 2 * i, num(env, m->forgets[i].ino));
    napi_set_element(env, arr, 2 * i + 1, num(env, m->forgets[i].nlookup));
  }
  return arr;
}

static napi_value write_buffer(napi_env env, msg *m) {
  napi_value buf;
  if (m->size == 0) {
    napi_create_buffer(env, 0, NULL, &buf);
    return buf;
  }
  if (napi_create_external_buffer(env, m->size, m->data, free_data, NULL, &buf) == napi_ok) {
    m->data = NULL;
    return buf;
  }
  // Runtimes with a V8 sandbox refuse external buffers: pay one more copy there.
  bool pending;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
  }
  napi_create_buffer_copy(env, m->size, m->data, NULL, &buf);
  return buf;
}

// Arguments after (op, req, uid, gid, pid, umask), per op; src/native/fuse.ts mirrors this table.
static void op_args(napi_env env, msg *m, napi_value *x) {
  double *a = m->a;
  napi_value undef;
  napi_get_undefined(env, &undef);
  napi_value fh = m->has_fh ? num(env, a[1]) : undef;
  for (int i = 0; i < 5; i++) x[i] = num(env, a[i]);
  switch (m->op) {
    case OP_FORGET:
      if (m->forgets) x[0] = forget_list(env, m);
      break;
    case OP_LOOKUP: case OP_UNLINK: case OP_RMDIR:
      x[1] = str(env, m->name);
      break;
    case OP_GETATTR:
      x[1] = fh;
      break;
    case OP_SETATTR:
      x[1] = setattr_changes(env, m);
      x[2] = fh;
      break;
    case OP_MKNOD: case OP_MKDIR: case OP_CREATE:  // (parent, name, mode, rdev|flags)
      x[3] = x[2];
      x[2] = x[1];
      x[1] = str(env, m->name);
      break;
    case OP_SYMLINK:  // (target, parent, name)
      x[1] = x[0];
      x[0] = str(env, m->name2);
      x[2] = str(env, m->name);
      break;
    case OP_RENAME:  // (parent, name, newparent, newname, flags)
      x[4] = x[2];
      x[2] = x[1];
      x[1] = str(env, m->name);
      x[3] = str(env, m->name2);
      break;
    case OP_LINK:  // (ino, newparent, newname)
      x[2] = str(env, m->name);
      break;
    case OP_READ:  // (ino, fh, size, offset)
      x[3] = x[2];
      x[2] = num(env, (double)m->size);
      break;
    case OP_READDIR:  // (ino, fh, offset, size)
      x[3] = num(env, (double)m->size);
      break;
    case OP_WRITE:  // (ino, fh, buffer, offset, flags)
      x[4] = x[3];
      x[3] = x[2];
      x[2] = write_buffer(env, m);
      break;
    case OP_FSYNC: case OP_FSYNCDIR: {
      napi_value b;
      napi_get_boolean(env, a[2] != 0, &b);
      x[2] = b;
      break;
    }
    case EV_EXIT:
      x[1] = str(env, m->text);
      break;
    default:
      break;
  }
}

static int has_req(int op) {
  return op < OP_COUNT && op != OP_INIT && op != OP_DESTROY && op != OP_FORGET;
}

void call_js(napi_env env, napi_value fn, void *context, void *data) {
  msg *m = data;
  int is_req = has_req(m->op);
  if (env == NULL) {  // queue drained while the function is torn down
    if (is_req) msg_fail(m, EIO);
    msg_free(m);
    return;
  }
  napi_value argv[11];
  napi_get_undefined(env, &argv[1]);
  if (is_req) {
    // Teardown may have answered it while it sat in the queue.
    if (!msg_pending(m)) {
      msg_free(m);
      return;
    }
    if (napi_create_external(env, m, req_finalize, NULL, &argv[1]) != napi_ok) {
      msg_fail(m, EIO);
      msg_free(m);
      return;
    }
    // From here the External owns m.
    if (napi_type_tag_object(env, argv[1], &REQ_TAG) != napi_ok) {
      msg_fail(m, EIO);
      return;
    }
  }
  argv[0] = num(env, m->op);
  argv[2] = num(env, m->uid);
  argv[3] = num(env, m->gid);
  argv[4] = num(env, m->pid);
  argv[5] = num(env, m->umask);
  op_args(env, m, argv + 6);
  napi_value recv;
  napi_get_undefined(env, &recv);
  if (napi_call_function(env, recv, fn, 11, argv, NULL) != napi_ok) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    if (is_req) msg_fail(m, EIO);
  }
  if (!is_req) msg_free(m);
}
