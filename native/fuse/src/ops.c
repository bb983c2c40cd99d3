// Kernel requests -> messages on the threadsafe function (FUSE threads). They copy what they need
// and return to the loop at once; they never wait on JS. The JS side is dispatch.c.
#include "addon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

msg *msg_new(session *s, fuse_req_t req, int op, const char *name, const char *name2) {
  size_t l1 = name ? strlen(name) + 1 : 0, l2 = name2 ? strlen(name2) + 1 : 0;
  msg *m = calloc(1, sizeof(msg) + l1 + l2);
  if (!m) return NULL;
  session_ref(s);
  m->s = s;
  m->req = req;
  m->op = op;
  if (name) m->name = memcpy(m->strings, name, l1);
  if (name2) m->name2 = memcpy(m->strings + l1, name2, l2);
  if (req) {
    const struct fuse_ctx *c = fuse_req_ctx(req);
    m->uid = c->uid;
    m->gid = c->gid;
    m->pid = c->pid;
    m->umask = c->umask;
  }
  return m;
}

void msg_free(msg *m) {
  session *s = m->s;
  free(m->data);
  free(m->forgets);
  free(m->text);
  free(m);
  session_unref(s);
}

// Takes the request away from whoever else might answer it; NULL if already answered.
fuse_req_t msg_claim(msg *m) {
  session *s = m->s;
  pthread_mutex_lock(&s->lock);
  fuse_req_t req = m->req;
  if (req) {
    m->req = NULL;
    m->prev->next = m->next;
    m->next->prev = m->prev;
    m->prev = m->next = NULL;
  }
  pthread_mutex_unlock(&s->lock);
  return req;
}

void msg_fail(msg *m, int err) {
  session *s = m->s;
  pthread_rwlock_rdlock(&s->alive_lock);
  fuse_req_t req = s->alive ? msg_claim(m) : NULL;
  if (req) fuse_reply_err(req, err);
  pthread_rwlock_unlock(&s->alive_lock);
}

static void forward(fuse_req_t req, msg *m) {
  if (!m) {
    if (req) fuse_reply_err(req, ENOMEM);
    return;
  }
  session *s = m->s;
  if (m->req) {
    pthread_mutex_lock(&s->lock);
    m->next = &s->pending;
    m->prev = s->pending.prev;
    s->pending.prev->next = m;
    s->pending.prev = m;
    pthread_mutex_unlock(&s->lock);
  }
  if (!post(s, m)) {
    // JS is gone (environment shutting down): answer here rather than leave the kernel waiting.
    if (m->req) msg_fail(m, EIO);
    msg_free(m);
  }
}

#define SES(req) ((session *)fuse_req_userdata(req))

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session *s = userdata;
  // FUSE 3 always negotiates big writes (FUSE_CAP_BIG_WRITES no longer exists); max_write is the
  // knob, and max_read must equal the -o max_read given at mount or libfuse rejects INIT.
  conn->max_write = s->max_write;
  conn->max_read = s->max_write;
  conn->max_readahead = s->max_write;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  unsigned wanted = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_DIO;
  conn->want |= conn->capable & wanted;
  // Off by default: with it the kernel owns size/mtime and defers writes, so errors surface late.
  if (s->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  msg *m = msg_new(s, NULL, OP_INIT, NULL, NULL);
  if (!m) return;
  m->a[0] = conn->proto_major;
  m->a[1] = conn->proto_minor;
  m->a[2] = conn->capable;
  m->a[3] = conn->want;
  m->a[4] = conn->max_write;
  forward(NULL, m);
}

static void ll_destroy(void *userdata) {
  forward(NULL, msg_new(userdata, NULL, OP_DESTROY, NULL, NULL));
}

static msg *req1(fuse_req_t req, int op, double a0, const char *name, const char *name2) {
  msg *m = msg_new(SES(req), req, op, name, name2);
  if (m) m->a[0] = a0;
  return m;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  forward(req, req1(req, OP_LOOKUP, parent, name, NULL));
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  session *s = SES(req);
  fuse_reply_none(req);
  msg *m = msg_new(s, NULL, OP_FORGET, NULL, NULL);
  if (m) {
    m->a[0] = ino;
    m->a[1] = nlookup;
  }
  forward(NULL, m);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  session *s = SES(req);
  msg *m = msg_new(s, NULL, OP_FORGET, NULL, NULL);
  if (m && (m->forgets = malloc(count * sizeof *forgets))) {
    memcpy(m->forgets, forgets, count * sizeof *forgets);
    m->nforgets = count;
  }
  fuse_reply_none(req);
  forward(NULL, m);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  msg *m = req1(req, OP_GETATTR, ino, NULL, NULL);
  if (m && fi) {
    m->has_fh = 1;
    m->a[1] = fi->fh;
  }
  forward(req, m);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
  msg *m = req1(req, OP_SETATTR, ino, NULL, NULL);
  if (m) {
    m->st = *attr;
    m->to_set = to_set;
    if (to_set & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      if (to_set & FUSE_SET_ATTR_ATIME_NOW) m->st.st_atim = now;
      if (to_set & FUSE_SET_ATTR_MTIME_NOW) m->st.st_mtim = now;
    }
    if (fi) {
      m->has_fh = 1;
      m->a[1] = fi->fh;
    }
  }
  forward(req, m);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  forward(req, req1(req, OP_READLINK, ino, NULL, NULL));
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  msg *m = req1(req, OP_MKNOD, parent, name, NULL);
  if (m) {
    m->a[1] = mode;
    m->a[2] = rdev;
  }
  forward(req, m);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  msg *m = req1(req, OP_MKDIR, parent, name, NULL);
  if (m) m->a[1] = mode;
  forward(req, m);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  forward(req, req1(req, OP_UNLINK, parent, name, NULL));
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  forward(req, req1(req, OP_RMDIR, parent, name, NULL));
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  forward(req, req1(req, OP_SYMLINK, parent, name, link));
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  msg *m = req1(req, OP_RENAME, parent, name, newname);
  if (m) {
    m->a[1] = newparent;
    m->a[2] = flags;
  }
  forward(req, m);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  msg *m = req1(req, OP_LINK, ino, newname, NULL);
  if (m) m->a[1] = newparent;
  forward(req, m);
}

static void with_fh(fuse_req_t req, int op, fuse_ino_t ino, struct fuse_file_info *fi, double a2) {
  msg *m = req1(req, op, ino, NULL, NULL);
  if (m) {
    m->a[1] = fi->fh;
    m->a[2] = a2;
  }
  forward(req, m);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  msg *m = req1(req, OP_OPEN, ino, NULL, NULL);
  if (m) m->a[1] = fi->flags;
  forward(req, m);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  msg *m = req1(req, OP_READ, ino, NULL, NULL);
  if (m) {
    m->a[1] = fi->fh;
    m->a[2] = off;
    m->size = size;
  }
  forward(req, m);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  msg *m = req1(req, OP_WRITE, ino, NULL, NULL);
  // `buf` lives in libfuse's receive buffer, reused as soon as we return: copy it once here and
  // hand this copy to JS as an external Buffer.
  if (m && size && !(m->data = malloc(size))) {
    msg_free(m);
    m = NULL;
  }
  if (m) {
    memcpy(m->data, buf, size);
    m->size = size;
    m->a[1] = fi->fh;
    m->a[2] = off;
    m->a[3] = fi->flags;
  }
  forward(req, m);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  with_fh(req, OP_FLUSH, ino, fi, 0);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  with_fh(req, OP_RELEASE, ino, fi, fi->flags);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  with_fh(req, OP_FSYNC, ino, fi, datasync);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  msg *m = req1(req, OP_OPENDIR, ino, NULL, NULL);
  if (m) m->a[1] = fi->flags;
  forward(req, m);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  msg *m = req1(req, OP_READDIR, ino, NULL, NULL);
  if (m) {
    m->a[1] = fi->fh;
    m->a[2] = off;
    m->size = size;
  }
  forward(req, m);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  with_fh(req, OP_RELEASEDIR, ino, fi, 0);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  with_fh(req, OP_FSYNCDIR, ino, fi, datasync);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  forward(req, req1(req, OP_STATFS, ino, NULL, NULL));
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  msg *m = req1(req, OP_ACCESS, ino, NULL, NULL);
  if (m) m->a[1] = mask;
  forward(req, m);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
  msg *m = req1(req, OP_CREATE, parent, name, NULL);
  if (m) {
    m->a[1] = mode;
    m->a[2] = fi->flags;
  }
  forward(req, m);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  msg *m = req1(req, OP_FALLOCATE, ino, NULL, NULL);
  if (m) {
    m->a[1] = fi->fh;
    m->a[2] = offset;
    m->a[3] = length;
    m->a[4] = mode;
  }
  forward(req, m);
}

// Only what JS implements is registered, so libfuse's own defaults apply to the rest: ENOSYS
// (which the kernel remembers, e.g. for flush or access), and success for open/opendir/release.
void ops_fill(struct fuse_lowlevel_ops *o, uint32_t mask) {
#define IF(op) if (mask & (1u << (op)))
  o->init = ll_init;
  o->destroy = ll_destroy;
  IF(OP_LOOKUP) o->lookup = ll_lookup;
  IF(OP_FORGET) { o->forget = ll_forget; o->forget_multi = ll_forget_multi; }
  IF(OP_GETATTR) o->getattr = ll_getattr;
  IF(OP_SETATTR) o->setattr = ll_setattr;
  IF(OP_READLINK) o->readlink = ll_readlink;
  IF(OP_MKNOD) o->mknod = ll_mknod;
  IF(OP_MKDIR) o->mkdir = ll_mkdir;
  IF(OP_UNLINK) o->unlink = ll_unlink;
  IF(OP_RMDIR) o->rmdir = ll_rmdir;
  IF(OP_SYMLINK) o->symlink = ll_symlink;
  IF(OP_RENAME) o->rename = ll_rename;
  IF(OP_LINK) o->link = ll_link;
  IF(OP_OPEN) o->open = ll_open;
  IF(OP_READ) o->read = ll_read;
  IF(OP_WRITE) o->write = ll_write;
  IF(OP_FLUSH) o->flush = ll_flush;
  IF(OP_RELEASE) o->release = ll_release;
  IF(OP_FSYNC) o->fsync = ll_fsync;
  IF(OP_OPENDIR) o->opendir = ll_opendir;
  IF(OP_READDIR) o->readdir = ll_readdir;
  IF(OP_RELEASEDIR) o->releasedir = ll_releasedir;
  IF(OP_FSYNCDIR) o->fsyncdir = ll_fsyncdir;
  IF(OP_STATFS) o->statfs = ll_statfs;
  IF(OP_ACCESS) o->access = ll_access;
  IF(OP_CREATE) o->create = ll_create;
  IF(OP_FALLOCATE) o->fallocate = ll_fallocate;
#undef IF
}
