/*
 * forkd-reseed.node: a Node-API addon the agent loads once, before the snapshot, so that every
 * restored child can reseed the generators whose state it cloned inside the agent process:
 * OpenSSL's DRBGs (generateKeyPair, createECDH, WebCrypto, TLS) and libc's random()/drand48().
 *
 * Node has no JavaScript call that reseeds OpenSSL. RAND_add() reseeds OpenSSL 3's primary DRBG
 * (fresh kernel entropy plus our bytes as additional input); the per-thread public and private
 * DRBGs see the primary's reseed counter move and reseed before their next output.
 *
 * The Node-API declarations are written out here because the host that compiles this file has no
 * headers for the guest's Node; Node-API is a stable C ABI. Every symbol is bound at load time
 * (-z now), so a missing one fails the load (a JavaScript error) instead of a call.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_buffer_info(napi_env env, napi_value value, void **data, size_t *length);
extern napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value);
extern napi_status napi_create_int32(napi_env env, int32_t value, napi_value *result);
extern napi_status napi_throw_error(napi_env env, const char *code, const char *msg);

/* OpenSSL 3 (libcrypto.so.3, loaded with the guest's Node). */
extern void RAND_add(const void *buf, int num, double randomness);
extern int RAND_status(void);

enum { RESEEDED_OPENSSL = 1, RESEEDED_LIBC = 2 };
/* RAND_add needs at least the DRBG's minimum entropy length (32 bytes for AES-256 CTR). */
enum { MIN_OPENSSL_BYTES = 32, LIBC_BYTES = 8 };

/* reseed(opensslBytes: Buffer, libcBytes: Buffer): number — a bit set of what was reseeded. */
static napi_value reseed(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *ossl = NULL, *libc = NULL;
  size_t ossl_len = 0, libc_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 2 ||
      napi_get_buffer_info(env, argv[0], &ossl, &ossl_len) != 0 ||
      napi_get_buffer_info(env, argv[1], &libc, &libc_len) != 0) {
    napi_throw_error(env, NULL, "reseed(opensslBytes, libcBytes): two Buffers expected");
    return NULL;
  }
  if (ossl_len < MIN_OPENSSL_BYTES || ossl_len > 4096 || libc_len < LIBC_BYTES) {
    napi_throw_error(env, NULL, "reseed: at least 32 bytes for OpenSSL (at most 4096) and 8 for libc");
    return NULL;
  }
  int done = 0;
  RAND_add(ossl, (int)ossl_len, (double)ossl_len);
  if (RAND_status() == 1) done |= RESEEDED_OPENSSL;

  uint16_t x[3];
  unsigned int s;
  memcpy(x, libc, sizeof x);
  memcpy(&s, (const char *)libc + sizeof x, sizeof s);
  srandom(s);
  srand(s);
  seed48(x);
  done |= RESEEDED_LIBC;

  napi_value out;
  napi_create_int32(env, done, &out);
  return out;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "reseed", 6, reseed, NULL, &fn) != 0) return NULL;
  if (napi_set_named_property(env, exports, "reseed", fn) != 0) return NULL;
  return exports;
}
