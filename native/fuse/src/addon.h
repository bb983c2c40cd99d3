// Shared state of the libfuse3 low-level binding.
//
// Threads: libfuse's session loop threads only turn kernel requests into `msg`s and queue them on
// one threadsafe function (never waiting on JS); the JS thread answers later through the reply
// exports. Everything that can block in the kernel (mount, umount, notify) runs off the JS thread,
// because the kernel may be waiting for this very process to answer a request.
#ifndef STITCH_FUSE_ADDON_H
#define STITCH_FUSE_ADDON_H

#define NAPI_VERSION 8
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

// Operation codes shared with src/native/fuse.ts (OP there).
#define OP_INIT 0
#define OP_DESTROY 1
#define OP_LOOKUP 2
#define OP_FORGET 3
#define OP_GETATTR 4
#define OP_SETATTR 5
#define OP_READLINK 6
#define OP_MKNOD 7
#define OP_MKDIR 8
#define OP_UNLINK 9
#define OP_RMDIR 10
#define OP_SYMLINK 11
#define OP_RENAME 12
#define OP_LINK 13
#define OP_OPEN 14
#define OP_READ 15
#define OP_WRITE 16
#define OP_FLUSH 17
#define OP_RELEASE 18
#define OP_FSYNC 19
#define OP_OPENDIR 20
#define OP_READDIR 21
#define OP_RELEASEDIR 22
#define OP_FSYNCDIR 23
#define OP_STATFS 24
#define OP_ACCESS 25
#define OP_CREATE 26
#define OP_FALLOCATE 27
#define OP_COUNT 28
// Session events, not kernel requests.
#define EV_MOUNTED 40
#define EV_EXIT 41
#define EV_UNMOUNTED 42

typedef struct session session;

// One kernel request (or event) on its way to JS. While `req` is set the kernel is waiting for an
// answer; exactly one path clears it (a reply export, teardown, or the GC safety net) and answers.
typedef struct msg {
  struct msg *prev, *next;  // session's list of unanswered requests
  session *s;
  fuse_req_t req;
  int op;
  uint32_t uid, gid, pid, umask;
  double a[5];              // numeric arguments, meaning per op (see ops.c, dispatch.c op_args)
  int has_fh;
  size_t size;              // read/readdir size, write length
  const char *name, *name2; // point into `strings`
  char *data;               // write payload, handed to a JS Buffer without a copy
  struct stat st;           // setattr values
  int to_set;
  struct fuse_forget_data *forgets;
  size_t nforgets;
  char *text;               // EV_EXIT error text
  char strings[];
} msg;

struct session {
  atomic_int refs;
  struct fuse_session *se;
  napi_threadsafe_function tsfn;
  char *mountpoint;
  char **argv;
  int argc;
  unsigned max_threads;
  unsigned max_write;
  int writeback_cache;
  struct fuse_lowlevel_ops ops;

  pthread_mutex_t lock;  // guards the list of unanswered requests
  msg pending;           // sentinel of that list

  // Readers: anything touching `se` from outside the loop (replies, notifies).
  // Writer: teardown, which answers what is left and frees `se`.
  pthread_rwlock_t alive_lock;
  int alive;

  // Set by the loop thread as its last act; waited for when the JS environment goes away.
  int loop_done;
  pthread_cond_t done_cond;  // with `lock`
  int cleanup_hooked;        // JS thread only
};

// session.c
void session_ref(session *s);
void session_unref(session *s);
int post(session *s, msg *m);

// ops.c (FUSE threads)
void ops_fill(struct fuse_lowlevel_ops *ops, uint32_t mask);
msg *msg_new(session *s, fuse_req_t req, int op, const char *name, const char *name2);
void msg_free(msg *m);
fuse_req_t msg_claim(msg *m);
void msg_fail(msg *m, int err);

// dispatch.c (JS thread)
void call_js(napi_env env, napi_value fn, void *context, void *data);
msg *msg_from(napi_env env, napi_value v);

// replies.c
napi_status replies_init(napi_env env, napi_value exports);

// session.c, for notify.c
session *session_from(napi_env env, napi_value v);

// notify.c
napi_status notify_init(napi_env env, napi_value exports);

#define NAPI_CALL(env, call)                                     \
  do {                                                           \
    napi_status status_ = (call);                                \
    if (status_ != napi_ok) {                                    \
      const napi_extended_error_info *info_ = NULL;              \
      napi_get_last_error_info((env), &info_);                   \
      bool pending_;                                             \
      napi_is_exception_pending((env), &pending_);               \
      if (!pending_)                                             \
        napi_throw_error((env), NULL,                            \
                         info_ && info_->error_message           \
                             ? info_->error_message              \
                             : "N-API call failed: " #call);     \
      return NULL;                                               \
    }                                                            \
  } while (0)

#endif
