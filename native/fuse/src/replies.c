// Reply exports, called from the JS thread whenever a handler settles. fuse_reply_* is
// thread-safe; alive_lock only keeps teardown from freeing the session under us.
// Every reply parses its arguments before claiming the request, so a malformed reply throws a
// TypeError and leaves the request answerable (the TS wrapper then answers EIO).
// Each returns true if it answered, false if the request had already been answered (teardown).
#include "addon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

static int begin(napi_env env, napi_callback_info info, size_t want, napi_value *argv, msg **m) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  for (size_t i = argc; i < want; i++) napi_get_undefined(env, &argv[i]);
  *m = msg_from(env, argv[0]);
  if (!*m) {
    napi_throw_type_error(env, NULL, "expected a FUSE request handle");
    return 0;
  }
  return 1;
}

static fuse_req_t claim(msg *m) {
  pthread_rwlock_rdlock(&m->s->alive_lock);
  return m->s->alive ? msg_claim(m) : NULL;
}

static napi_value done(napi_env env, msg *m, fuse_req_t req) {
  pthread_rwlock_unlock(&m->s->alive_lock);
  napi_value r;
  napi_get_boolean(env, req != NULL, &r);
  return r;
}

static int bad(napi_env env, const char *what) {
  napi_throw_type_error(env, NULL, what);
  return 0;
}

static int is_object(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_object;
}

// Missing/undefined -> dflt; present but not a number -> error.
static int num(napi_env env, napi_value obj, const char *key, double dflt, double *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_undefined || t == napi_null) {
    *out = dflt;
    return 1;
  }
  if (t == napi_bigint) {
    bool lossless;
    int64_t i;
    napi_get_value_bigint_int64(env, v, &i, &lossless);
    *out = (double)i;
    return 1;
  }
  if (t != napi_number) {
    char msg[96];
    snprintf(msg, sizeof msg, "'%s' must be a number", key);
    return bad(env, msg);
  }
  return napi_get_value_double(env, v, out) == napi_ok;
}

static int flag(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) == napi_ok && napi_coerce_to_bool(env, v, &v) == napi_ok)
    napi_get_value_bool(env, v, &b);
  return b;
}

static struct timespec ts(double ms) {
  struct timespec t;
  double sec = ms / 1e3;
  t.tv_sec = (time_t)sec;
  if ((double)t.tv_sec > sec) t.tv_sec--;  // floor for times before 1970
  t.tv_nsec = (long)((ms - (double)t.tv_sec * 1e3) * 1e6);
  if (t.tv_nsec >= 1000000000L) t.tv_nsec = 999999999L;
  if (t.tv_nsec < 0) t.tv_nsec = 0;
  return t;
}

static int attr_from(napi_env env, napi_value o, struct stat *st) {
  if (!is_object(env, o)) return bad(env, "attr must be an object");
  double ino, mode, nlink, uid, gid, rdev, size, blocks, blksize, at, mt, ct;
  if (!num(env, o, "ino", 0, &ino) || !num(env, o, "mode", 0, &mode) || !num(env, o, "nlink", 1, &nlink) ||
      !num(env, o, "uid", 0, &uid) || !num(env, o, "gid", 0, &gid) || !num(env, o, "rdev", 0, &rdev) ||
      !num(env, o, "size", 0, &size) || !num(env, o, "blocks", -1, &blocks) ||
      !num(env, o, "blksize", 4096, &blksize) || !num(env, o, "mtimeMs", 0, &mt) ||
      !num(env, o, "atimeMs", mt, &at) || !num(env, o, "ctimeMs", mt, &ct))
    return 0;
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)ino;
  st->st_mode = (mode_t)mode;
  st->st_nlink = (nlink_t)nlink;
  st->st_uid = (uid_t)uid;
  st->st_gid = (gid_t)gid;
  st->st_rdev = (dev_t)rdev;
  st->st_size = (off_t)size;
  st->st_blocks = blocks < 0 ? (blkcnt_t)((size + 511) / 512) : (blkcnt_t)blocks;
  st->st_blksize = (blksize_t)blksize;
  st->st_atim = ts(at);
  st->st_mtim = ts(mt);
  st->st_ctim = ts(ct);
  return 1;
}

static int entry_from(napi_env env, napi_value o, struct fuse_entry_param *e) {
  if (!is_object(env, o)) return bad(env, "entry must be an object");
  double ino, gen, at, et;
  napi_value attr;
  memset(e, 0, sizeof *e);
  if (!num(env, o, "ino", 0, &ino) || !num(env, o, "generation", 0, &gen) ||
      !num(env, o, "attrTimeout", 1, &at) || !num(env, o, "entryTimeout", 1, &et))
    return 0;
  e->ino = (fuse_ino_t)ino;
  e->generation = (uint64_t)gen;
  e->attr_timeout = at;
  e->entry_timeout = et;
  if (e->ino == 0) return 1;  // negative entry: cached "does not exist"
  if (napi_get_named_property(env, o, "attr", &attr) != napi_ok || !attr_from(env, attr, &e->attr)) return 0;
  if (e->attr.st_ino == 0) e->attr.st_ino = e->ino;
  return 1;
}

static int open_from(napi_env env, napi_value o, struct fuse_file_info *fi) {
  memset(fi, 0, sizeof *fi);
  napi_valuetype t;
  napi_typeof(env, o, &t);
  if (t == napi_undefined || t == napi_null) return 1;
  if (t != napi_object) return bad(env, "open reply must be an object");
  double fh;
  if (!num(env, o, "fh", 0, &fh)) return 0;
  fi->fh = (uint64_t)fh;
  fi->direct_io = flag(env, o, "directIo");
  fi->keep_cache = flag(env, o, "keepCache");
  fi->nonseekable = flag(env, o, "nonSeekable");
  fi->cache_readdir = flag(env, o, "cacheDir");
  return 1;
}

static napi_value reply_err(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  int32_t err = EIO;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  napi_get_value_int32(env, argv[1], &err);
  if (err < 0) err = -err;
  if (err >= 1000) err = EIO;  // libfuse turns those into ERANGE
  fuse_req_t req = claim(m);
  if (req) fuse_reply_err(req, err);
  return done(env, m, req);
}

static napi_value reply_entry(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  struct fuse_entry_param e;
  if (!begin(env, info, 2, argv, &m) || !entry_from(env, argv[1], &e)) return NULL;
  fuse_req_t req = claim(m);
  if (req) fuse_reply_entry(req, &e);
  return done(env, m, req);
}

static napi_value reply_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  if (!begin(env, info, 2, argv, &m) || !entry_from(env, argv[1], &e) || !open_from(env, argv[1], &fi))
    return NULL;
  if (e.ino == 0) return bad(env, "create must return an inode"), NULL;
  fi.flags = (int)m->a[2];
  fuse_req_t req = claim(m);
  if (req) fuse_reply_create(req, &e, &fi);
  return done(env, m, req);
}

static napi_value reply_attr(napi_env env, napi_callback_info info) {
  napi_value argv[2], attr;
  msg *m;
  struct stat st;
  double timeout;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  if (!is_object(env, argv[1])) return bad(env, "getattr must return {attr, timeout}"), NULL;
  if (!num(env, argv[1], "timeout", 1, &timeout) || napi_get_named_property(env, argv[1], "attr", &attr) != napi_ok ||
      !attr_from(env, attr, &st))
    return NULL;
  if (st.st_ino == 0) st.st_ino = (ino_t)m->a[0];
  fuse_req_t req = claim(m);
  if (req) fuse_reply_attr(req, &st, timeout);
  return done(env, m, req);
}

static napi_value reply_readlink(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  size_t len;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok)
    return bad(env, "readlink must return a string"), NULL;
  char *target = malloc(len + 1);
  if (!target) return bad(env, "out of memory"), NULL;
  napi_get_value_string_utf8(env, argv[1], target, len + 1, &len);
  fuse_req_t req = claim(m);
  if (req) fuse_reply_readlink(req, target);
  free(target);
  return done(env, m, req);
}

static napi_value reply_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  struct fuse_file_info fi;
  if (!begin(env, info, 2, argv, &m) || !open_from(env, argv[1], &fi)) return NULL;
  fi.flags = (int)m->a[1];
  fuse_req_t req = claim(m);
  if (req) fuse_reply_open(req, &fi);
  return done(env, m, req);
}

static napi_value reply_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  double count;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  if (napi_get_value_double(env, argv[1], &count) != napi_ok || count < 0)
    return bad(env, "write must return a byte count"), NULL;
  if (count > (double)m->size) count = (double)m->size;  // the kernel treats more as an error
  fuse_req_t req = claim(m);
  if (req) fuse_reply_write(req, (size_t)count);
  return done(env, m, req);
}

static napi_value reply_buf(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  void *data = NULL;
  size_t len = 0;
  bool is_ta = false;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return bad(env, "read must return a Buffer or Uint8Array"), NULL;
  napi_typedarray_type type;
  size_t length, offset;
  napi_value ab;
  napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset);
  if (type != napi_uint8_array && type != napi_uint8_clamped_array && type != napi_int8_array)
    return bad(env, "read must return a Buffer or Uint8Array"), NULL;
  len = length < m->size ? length : m->size;
  fuse_req_t req = claim(m);
  if (req) fuse_reply_buf(req, data, len);
  return done(env, m, req);
}

// Packs entries until the kernel's buffer is full; entries past that are asked for again from
// the last packed entry's nextOffset.
static napi_value reply_dirents(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  bool is_array = false;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) return bad(env, "readdir must return an array"), NULL;
  uint32_t n;
  napi_get_array_length(env, argv[1], &n);
  char *buf = malloc(m->size ? m->size : 1);
  if (!buf) return bad(env, "out of memory"), NULL;
  size_t pos = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e, name;
    char namebuf[1025];
    size_t namelen;
    double ino, mode, next;
    napi_get_element(env, argv[1], i, &e);
    if (!is_object(env, e) || napi_get_named_property(env, e, "name", &name) != napi_ok ||
        napi_get_value_string_utf8(env, name, namebuf, sizeof namebuf, &namelen) != napi_ok ||
        namelen == 0 || namelen >= sizeof namebuf - 1) {
      free(buf);
      return bad(env, "each directory entry needs a name (1..1023 bytes)"), NULL;
    }
    if (!num(env, e, "ino", 0, &ino) || !num(env, e, "mode", 0, &mode) || !num(env, e, "nextOffset", m->a[2] + i + 1, &next)) {
      free(buf);
      return NULL;
    }
    struct stat st = {.st_ino = (ino_t)ino, .st_mode = (mode_t)mode};
    size_t need = fuse_add_direntry(NULL, buf + pos, m->size - pos, namebuf, &st, (off_t)next);
    if (need > m->size - pos) break;
    pos += need;
  }
  fuse_req_t req = claim(m);
  if (req) fuse_reply_buf(req, buf, pos);
  free(buf);
  return done(env, m, req);
}

static napi_value reply_statfs(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  msg *m;
  double bsize, frsize, blocks, bfree, bavail, files, ffree, namemax;
  if (!begin(env, info, 2, argv, &m)) return NULL;
  napi_value o = argv[1];
  if (!is_object(env, o)) return bad(env, "statfs must return an object"), NULL;
  if (!num(env, o, "bsize", 4096, &bsize) || !num(env, o, "frsize", bsize, &frsize) ||
      !num(env, o, "blocks", 0, &blocks) || !num(env, o, "bfree", 0, &bfree) ||
      !num(env, o, "bavail", bfree, &bavail) || !num(env, o, "files", 0, &files) ||
      !num(env, o, "ffree", 0, &ffree) || !num(env, o, "namemax", 255, &namemax))
    return NULL;
  struct statvfs sv = {
      .f_bsize = (unsigned long)bsize, .f_frsize = (unsigned long)frsize,
      .f_blocks = (fsblkcnt_t)blocks, .f_bfree = (fsblkcnt_t)bfree, .f_bavail = (fsblkcnt_t)bavail,
      .f_files = (fsfilcnt_t)files, .f_ffree = (fsfilcnt_t)ffree, .f_favail = (fsfilcnt_t)ffree,
      .f_namemax = (unsigned long)namemax,
  };
  fuse_req_t req = claim(m);
  if (req) fuse_reply_statfs(req, &sv);
  return done(env, m, req);
}

napi_status replies_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"replyErr", NULL, reply_err, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyEntry", NULL, reply_entry, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyCreate", NULL, reply_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyAttr", NULL, reply_attr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyReadlink", NULL, reply_readlink, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyOpen", NULL, reply_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyWrite", NULL, reply_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyBuf", NULL, reply_buf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyDirents", NULL, reply_dirents, NULL, NULL, NULL, napi_enumerable, NULL},
      {"replyStatfs", NULL, reply_statfs, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof *props, props);
}
