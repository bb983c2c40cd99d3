// FastCDC cut-point scanner: the hot loop of JsCutScanner (src/core/chunker.ts) in C.
// It must find exactly the same cut points as the JS reference, so the arithmetic mirrors it:
// the hash is 32 bits with wrap-around (done in uint32_t, where overflow is defined, and only
// reinterpreted as int32 when stored), and positions are 64-bit so that any int32 state a caller
// passes in behaves as it does in JS doubles.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint32_t gear[256];
  int64_t min, avg, max;
  uint32_t mask_s, mask_l;
} Config;

// A handle from another addon is also an external; the tag keeps scan() from casting it to Config.
static const napi_type_tag CONFIG_TAG = {0x7f1c0d5e2a9b4c31ULL, 0xb6e84f02d3a7c519ULL};

#define CHECK(call)                                        \
  do {                                                     \
    if ((call) != napi_ok) return throw_pending(env);      \
  } while (0)

// Leaves an engine error in place if there is one, otherwise reports a generic failure.
static napi_value throw_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, "cdc: Node-API call failed");
  return NULL;
}

static napi_value type_error(napi_env env, const char* msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static bool get_int32(napi_env env, napi_value v, int32_t* out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return false;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int64_t)d) return false;
  *out = (int32_t)d;
  return true;
}

static bool get_typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* len) {
  bool is = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok) return false;
  return type == want;
}

static void free_config(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  free(data);
}

// configure(gear: Int32Array(256), min, avg, max, maskS, maskL) -> handle
static napi_value configure(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return type_error(env, "cdc.configure(gear, min, avg, max, maskS, maskL): 6 arguments expected");
  void* gear;
  size_t gear_len;
  if (!get_typed(env, argv[0], napi_int32_array, &gear, &gear_len) || gear_len != 256)
    return type_error(env, "cdc.configure: gear must be an Int32Array of 256 entries");
  int32_t v[5];
  for (int k = 0; k < 5; k++) {
    if (!get_int32(env, argv[k + 1], &v[k]))
      return type_error(env, "cdc.configure: min, avg, max, maskS, maskL must be int32 numbers");
  }
  // JsCutScanner works for any sizes, but only ordered positive ones mean anything; checkChunkerParams
  // enforces more, this only keeps nonsense out.
  if (!(v[0] >= 0 && v[0] <= v[1] && v[1] <= v[2] && v[2] > 0))
    return type_error(env, "cdc.configure: need 0 <= min <= avg <= max, max > 0");
  Config* c = malloc(sizeof *c);
  if (c == NULL) {
    napi_throw_error(env, NULL, "cdc.configure: out of memory");
    return NULL;
  }
  memcpy(c->gear, gear, sizeof c->gear);
  c->min = v[0];
  c->avg = v[1];
  c->max = v[2];
  c->mask_s = (uint32_t)v[3];
  c->mask_l = (uint32_t)v[4];
  napi_value handle;
  if (napi_create_external(env, c, free_config, NULL, &handle) != napi_ok) {
    free(c);
    return throw_pending(env);
  }
  CHECK(napi_type_tag_object(env, handle, &CONFIG_TAG));
  return handle;
}

#define STEP(k)                                   \
  h = (h << 1) + gear[p[i + (k)]];                \
  if ((h & mask) == 0) {                          \
    *hp = h;                                      \
    return i + (k) + 1;                           \
  }

// Hashes p[i..end) and returns the index just past the first byte whose hash has no bit of
// `mask` set, or -1 with *hp updated when there is none. The unrolling only saves loop overhead;
// the hash itself is one serial dependency chain.
static inline int64_t run(const uint8_t* p, int64_t i, int64_t end, uint32_t* hp, uint32_t mask,
                          const uint32_t* gear) {
  uint32_t h = *hp;
  for (; i + 8 <= end; i += 8) {
    STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
  }
  for (; i < end; i++) {
    STEP(0)
  }
  *hp = h;
  return -1;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t reset_at(int32_t* state, int64_t index) {
  state[0] = 0;
  state[1] = 0;
  return index;
}

// Same control flow as JsCutScanner.scan, step for step, including what it does with odd states
// (e.g. a position past max ends the chunk at `start`).
static int64_t scan_impl(const Config* c, const uint8_t* p, int64_t n, int64_t i, int32_t* state) {
  int64_t pos = state[0];
  uint32_t h = (uint32_t)state[1];
  if (pos < c->min) {
    int64_t skip = min64(c->min - pos, n - i);
    i += skip;
    pos += skip;
    if (pos < c->min) {
      state[0] = (int32_t)pos;
      return -1;
    }
  }
  if (pos < c->avg) {
    int64_t len = min64(c->avg - pos, n - i);
    int64_t cut = run(p, i, i + len, &h, c->mask_s, c->gear);
    if (cut >= 0) return reset_at(state, cut);
    i += len;
    pos += len;
  }
  if (pos >= c->avg) {
    int64_t len = min64(c->max - pos, n - i);
    int64_t cut = run(p, i, i + len, &h, c->mask_l, c->gear);
    if (cut >= 0) return reset_at(state, cut);
    if (len > 0) i += len;  // JS's loop leaves i alone when its end lies before it
    pos += len;
    if (pos >= c->max) return reset_at(state, i);
  }
  state[0] = (int32_t)pos;
  state[1] = (int32_t)h;
  return -1;
}

// scan(handle, buf: Uint8Array, start: number, state: Int32Array(>= 2)) -> cut index or -1
static napi_value scan(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "cdc.scan(handle, buf, start, state): 4 arguments expected");
  napi_valuetype t;
  bool tagged = false;
  void* cfg = NULL;
  CHECK(napi_typeof(env, argv[0], &t));
  if (t != napi_external || napi_check_object_type_tag(env, argv[0], &CONFIG_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &cfg) != napi_ok)
    return type_error(env, "cdc.scan: handle must come from cdc.configure");
  void* buf;
  size_t n;
  if (!get_typed(env, argv[1], napi_uint8_array, &buf, &n))
    return type_error(env, "cdc.scan: buf must be a Uint8Array");
  double start;
  CHECK(napi_typeof(env, argv[2], &t));
  if (t != napi_number || napi_get_value_double(env, argv[2], &start) != napi_ok || !(start >= 0 && start <= (double)n) ||
      start != (double)(int64_t)start)
    return type_error(env, "cdc.scan: start must be an integer in [0, buf.length]");
  void* st;
  size_t st_len;
  if (!get_typed(env, argv[3], napi_int32_array, &st, &st_len) || st_len < 2)
    return type_error(env, "cdc.scan: state must be an Int32Array of length >= 2");
  int64_t cut = scan_impl(cfg, buf, (int64_t)n, (int64_t)start, st);
  napi_value result;
  CHECK(napi_create_int64(env, cut, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"configure", NULL, configure, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scan", NULL, scan, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
