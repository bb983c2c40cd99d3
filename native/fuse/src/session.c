// Session lifecycle: mount, the loop thread, unmount and teardown, module registration.
#include "addon.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const napi_type_tag SESSION_TAG = {0x2b8e0f6d4a1c9e53ULL, 0x71d3b5a9c2e4f608ULL};

void session_ref(session *s) {
  atomic_fetch_add(&s->refs, 1);
}

void session_unref(session *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->done_cond);
  pthread_rwlock_destroy(&s->alive_lock);
  for (int i = 0; i < s->argc; i++) free(s->argv[i]);
  free(s->argv);
  free(s->mountpoint);
  free(s);
}

int post(session *s, msg *m) {
  return napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) == napi_ok;
}

static void post_event(session *s, int op, double a0, const char *text) {
  msg *m = msg_new(s, NULL, op, NULL, NULL);
  if (!m) return;
  m->a[0] = a0;
  if (text) m->text = strdup(text);
  if (!post(s, m)) msg_free(m);
}

// libfuse reports mount failures only through its logger: keep them for the JS error instead.
static __thread char *log_capture;
static __thread size_t log_capture_size;

static void log_func(enum fuse_log_level level, const char *fmt, va_list ap) {
  if (log_capture) {
    size_t used = strlen(log_capture);
    if (used + 1 < log_capture_size) vsnprintf(log_capture + used, log_capture_size - used, fmt, ap);
    return;
  }
  vfprintf(stderr, fmt, ap);
}

// Root unmounts with umount2; others need the setuid helper, which can only detach lazily.
static int fusermount_unmount(const char *mountpoint) {
  pid_t pid;
  char *argv[] = {"fusermount3", "-u", "-z", "--", (char *)mountpoint, NULL};
  if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0) return errno ? errno : ENOENT;
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return errno;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EPERM;
}

// Aborting first means nothing below waits for this process to answer the kernel.
static int force_detach(const char *mountpoint) {
  if (geteuid() != 0) return fusermount_unmount(mountpoint);
  return umount2(mountpoint, MNT_FORCE | MNT_DETACH | UMOUNT_NOFOLLOW) == 0 ? 0 : errno;
}

static void teardown(session *s) {
  // Answer what JS still holds, before anything waits on alive_lock: a notify holding it may be
  // blocked in the kernel behind one of these very requests.
  pthread_mutex_lock(&s->lock);
  while (s->pending.next != &s->pending) {
    msg *m = s->pending.next;
    fuse_req_t req = m->req;
    m->req = NULL;
    m->prev->next = m->next;
    m->next->prev = m->prev;
    m->prev = m->next = NULL;
    fuse_reply_err(req, EIO);
  }
  pthread_mutex_unlock(&s->lock);

  // The loop normally ends because the connection is gone (ENODEV). If it ended some other way,
  // abort the connection so that notifies and callers blocked on it return.
  struct pollfd pfd = {.fd = fuse_session_fd(s->se), .events = 0};
  if (!(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))) force_detach(s->mountpoint);

  pthread_rwlock_wrlock(&s->alive_lock);
  s->alive = 0;
  fuse_session_unmount(s->se);
  fuse_session_destroy(s->se);  // runs the destroy op if the kernel never sent DESTROY
  s->se = NULL;
  pthread_rwlock_unlock(&s->alive_lock);
}

static void *loop_main(void *arg) {
  session *s = arg;
  char errors[1024] = "";
  struct fuse_args args = FUSE_ARGS_INIT(s->argc, s->argv);

  log_capture = errors;
  log_capture_size = sizeof errors;
  struct fuse_session *se = fuse_session_new(&args, &s->ops, sizeof s->ops, s);
  if (se && fuse_session_mount(se, s->mountpoint) != 0) {
    fuse_session_destroy(se);
    se = NULL;
  }
  log_capture = NULL;
  if (!se) {
    size_t n = strlen(errors);
    while (n && errors[n - 1] == '\n') errors[--n] = 0;
    post_event(s, EV_EXIT, -1, n ? errors : "fuse: mount failed");
    goto out;
  }

  pthread_rwlock_wrlock(&s->alive_lock);
  s->se = se;
  s->alive = 1;
  pthread_rwlock_unlock(&s->alive_lock);
  post_event(s, EV_MOUNTED, 0, NULL);

  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  fuse_loop_cfg_set_max_threads(cfg, s->max_threads);
  fuse_loop_cfg_set_idle_threads(cfg, s->max_threads);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);

  teardown(s);
  post_event(s, EV_EXIT, rc, NULL);
out:
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  pthread_mutex_lock(&s->lock);
  s->loop_done = 1;
  pthread_cond_broadcast(&s->done_cond);
  pthread_mutex_unlock(&s->lock);
  session_unref(s);
  return NULL;
}

// The environment is going away with the session still up (a worker terminated, say): abort the
// connection and let the loop thread finish while the threadsafe function it posts to still exists.
static void env_cleanup(void *arg) {
  session *s = arg;
  s->cleanup_hooked = 0;
  pthread_mutex_lock(&s->lock);
  if (!s->loop_done) {
    pthread_mutex_unlock(&s->lock);
    force_detach(s->mountpoint);
    pthread_mutex_lock(&s->lock);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    while (!s->loop_done && pthread_cond_timedwait(&s->done_cond, &s->lock, &deadline) == 0) {
    }
  }
  pthread_mutex_unlock(&s->lock);
  session_unref(s);
}

// FUSE and helper threads must not take the process's signals: Node handles those.
static int spawn_detached(void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&t, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}

session *session_from(napi_env env, napi_value v) {
  bool ok = false;
  void *p = NULL;
  if (napi_check_object_type_tag(env, v, &SESSION_TAG, &ok) != napi_ok || !ok ||
      napi_get_value_external(env, v, &p) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a FUSE session handle");
    return NULL;
  }
  return p;
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  session_unref(data);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  session *s = data;
  s->tsfn = NULL;  // JS thread only, like every check of it
  if (s->cleanup_hooked) {
    s->cleanup_hooked = 0;
    napi_remove_env_cleanup_hook(env, env_cleanup, s);
    session_unref(s);
  }
  session_unref(s);
}

static bool get_bool(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) == napi_ok) napi_get_value_bool(env, v, &b);
  return b;
}

static double get_num(napi_env env, napi_value obj, const char *key, double dflt) {
  napi_value v;
  double d;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok ||
      napi_get_value_double(env, v, &d) != napi_ok)
    return dflt;
  return d;
}

// Option values go through fuse_opt, where ',' separates and '\' escapes.
static void append_escaped(char *out, size_t cap, const char *val) {
  size_t n = strlen(out);
  for (; *val && n + 2 < cap; val++) {
    if (*val == ',' || *val == '\\') out[n++] = '\\';
    out[n++] = *val;
  }
  out[n] = 0;
}

static void get_str(napi_env env, napi_value obj, const char *key, char *buf, size_t cap, const char *dflt) {
  napi_value v;
  size_t len;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok ||
      napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) {
    snprintf(buf, cap, "%s", dflt);
  }
}

// mount(mountpoint, options, dispatcher) -> handle. Returns at once: the loop thread mounts and
// reports EV_MOUNTED or EV_EXIT, since even mount(2) can end up waiting on a FUSE mount.
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char mountpoint[PATH_MAX];
  size_t len;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof mountpoint, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "mount(mountpoint: string, options: object, dispatcher: function)");
    return NULL;
  }
  napi_value o = argv[1];
  char fsname[256], subtype[64], opts[1024] = "";
  get_str(env, o, "fsname", fsname, sizeof fsname, "stitchfs");
  get_str(env, o, "subtype", subtype, sizeof subtype, "stitchfs");
  double max_write = get_num(env, o, "maxWrite", 1 << 20);
  double max_threads = get_num(env, o, "maxThreads", 8);
  if (max_write < 4096 || max_write > (1 << 20)) max_write = 1 << 20;  // libfuse's buffer is 1 MiB
  if (max_threads < 1 || max_threads > 256) max_threads = 8;

  strcat(opts, "fsname=");
  append_escaped(opts, sizeof opts, fsname);
  strcat(opts, ",subtype=");
  append_escaped(opts, sizeof opts, subtype);
  snprintf(opts + strlen(opts), sizeof opts - strlen(opts), ",max_read=%u", (unsigned)max_write);
  if (get_bool(env, o, "allowOther")) strcat(opts, ",allow_other");
  if (get_bool(env, o, "defaultPermissions")) strcat(opts, ",default_permissions");
  if (get_bool(env, o, "readOnly")) strcat(opts, ",ro");

  session *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  atomic_init(&s->refs, 1);  // the JS handle
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->done_cond, NULL);
  pthread_rwlock_init(&s->alive_lock, NULL);
  s->pending.next = s->pending.prev = &s->pending;
  s->mountpoint = strdup(mountpoint);
  s->max_write = (unsigned)max_write;
  s->max_threads = (unsigned)max_threads;
  s->writeback_cache = get_bool(env, o, "writebackCache");
  ops_fill(&s->ops, (uint32_t)get_num(env, o, "opMask", 0));
  int debug = get_bool(env, o, "debug");
  s->argc = debug ? 4 : 3;
  s->argv = calloc(s->argc + 1, sizeof(char *));
  s->argv[0] = strdup("stitchfs");
  s->argv[1] = strdup("-o");
  s->argv[2] = strdup(opts);
  if (debug) s->argv[3] = strdup("-d");

  napi_value name, handle;
  napi_create_string_utf8(env, "stitchfs-fuse", NAPI_AUTO_LENGTH, &name);
  session_ref(s);  // released by tsfn_finalize
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, s, tsfn_finalize, NULL, call_js,
                                      &s->tsfn) != napi_ok) {
    session_unref(s);
    session_unref(s);
    napi_throw_error(env, NULL, "cannot create the FUSE dispatcher");
    return NULL;
  }
  session_ref(s);  // the loop thread's
  int rc = spawn_detached(loop_main, s);
  if (rc != 0) {
    session_unref(s);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    session_unref(s);
    napi_throw_error(env, NULL, strerror(rc));
    return NULL;
  }
  session_ref(s);
  if (napi_add_env_cleanup_hook(env, env_cleanup, s) == napi_ok) s->cleanup_hooked = 1;
  else session_unref(s);
  NAPI_CALL(env, napi_create_external(env, s, handle_finalize, NULL, &handle));
  NAPI_CALL(env, napi_type_tag_object(env, handle, &SESSION_TAG));
  return handle;
}

typedef struct {
  session *s;
  napi_threadsafe_function tsfn;
  int force;
} unmount_job;

// A plain umount works when nothing uses the mount; if busy, either abort the connection (force:
// callers get ENOTCONN, the loop ends now) or detach lazily and let the loop end with the last user.
static void *unmount_main(void *arg) {
  unmount_job *j = arg;
  session *s = j->s;
  int err = 0;
  if (geteuid() != 0) {
    err = fusermount_unmount(s->mountpoint);
  } else if (umount2(s->mountpoint, UMOUNT_NOFOLLOW) != 0) {
    err = errno;
    if (err == EBUSY) {
      int flags = MNT_DETACH | UMOUNT_NOFOLLOW | (j->force ? MNT_FORCE : 0);
      err = umount2(s->mountpoint, flags) == 0 ? 0 : errno;
    }
  }
  post_event(s, EV_UNMOUNTED, err, NULL);
  napi_release_threadsafe_function(j->tsfn, napi_tsfn_release);
  session_unref(s);
  free(j);
  return NULL;
}

// unmount(handle, force) -> false if the session had already ended. Completion arrives as events.
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session *s = session_from(env, argv[0]);
  if (!s) return NULL;
  bool force = true;
  if (argc > 1) napi_get_value_bool(env, argv[1], &force);
  bool started = false;
  unmount_job *j = malloc(sizeof *j);
  if (j && s->tsfn && napi_acquire_threadsafe_function(s->tsfn) == napi_ok) {
    j->s = s;
    j->tsfn = s->tsfn;
    j->force = force;
    session_ref(s);
    if (spawn_detached(unmount_main, j) == 0) {
      started = true;
    } else {
      napi_release_threadsafe_function(j->tsfn, napi_tsfn_release);
      session_unref(s);
    }
  }
  if (!started) free(j);
  napi_get_boolean(env, started, &result);
  return result;
}

// abort(handle) -> errno. Synchronous, for process exit: the connection is aborted before the
// detach, so the kernel never waits for this (blocked) thread to answer anything.
static napi_value js_abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session *s = session_from(env, argv[0]);
  if (!s) return NULL;
  napi_create_int32(env, force_detach(s->mountpoint), &result);
  return result;
}

NAPI_MODULE_INIT() {
  fuse_set_log_func(log_func);
  napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"abort", NULL, js_abort, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof *props, props) != napi_ok) return NULL;
  if (replies_init(env, exports) != napi_ok) return NULL;
  if (notify_init(env, exports) != napi_ok) return NULL;
  return exports;
}
