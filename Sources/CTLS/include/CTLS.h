#ifndef HAPPYRELAY_CTLS_H
#define HAPPYRELAY_CTLS_H

#include <stddef.h>
#include <openssl/ssl.h>

// OpenSSL helpers: calls that are C macros (which Swift cannot import) as functions, and
// one-shot hashes and HMAC from libcrypto.

/// SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION).
int ctls_require_tls12(SSL_CTX *ctx);
/// SSL_set_tlsext_host_name: Server Name Indication.
int ctls_set_server_name(SSL *ssl, const char *name);
/// SSL_CTX_set_mode with partial writes and a moving write buffer, as non-blocking I/O needs,
/// and record buffers released while a connection is idle.
void ctls_set_nonblocking_modes(SSL_CTX *ctx);
/// SSL_CTX_set_session_cache_mode for a client that keeps its sessions itself: each new one is
/// handed to the context's new-session callback, and none is kept inside OpenSSL.
void ctls_hand_client_sessions_over(SSL_CTX *ctx);

/// Hash algorithms by their digest size in bits: 1 (SHA-1), 256, 512.
/// An HMAC key prepared once: its inner and outer pads already hashed.
typedef struct ctls_hmac_key ctls_hmac_key;
/// Prepares `key` for HMAC with `algorithm`; NULL for an unknown algorithm or a failure.
ctls_hmac_key *ctls_hmac_key_new(int algorithm, const void *key, size_t key_length);
/// Frees what ctls_hmac_key_new returned (NULL is allowed).
void ctls_hmac_key_free(ctls_hmac_key *prepared);
/// HMAC of `data` under a prepared key; writes the MAC to `out` (64 bytes of room) and returns
/// its length, or 0 on a failure. Safe to call from several threads with the same key.
int ctls_hmac_keyed(const ctls_hmac_key *prepared, const void *data, size_t length, unsigned char *out);
/// The digest of `data`; writes it to `out` (64 bytes of room) and returns its length, or 0.
int ctls_digest(int algorithm, const void *data, size_t length, unsigned char *out);

#endif
