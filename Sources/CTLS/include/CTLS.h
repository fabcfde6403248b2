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

/// Hash algorithms by their digest size in bits: 1 (SHA-1), 256, 512.
/// HMAC of `data` under `key`; writes the MAC to `out` (64 bytes of room) and returns its
/// length, or 0 for an unknown algorithm or a failure.
int ctls_hmac(int algorithm, const void *key, size_t key_length, const void *data, size_t length, unsigned char *out);
/// The digest of `data`; writes it to `out` (64 bytes of room) and returns its length, or 0.
int ctls_digest(int algorithm, const void *data, size_t length, unsigned char *out);

#endif
