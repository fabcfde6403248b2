// HMAC() and its one-shot peers are deprecated in OpenSSL 3 in favour of EVP_MAC, but remain
// supported, and are the fastest one-shot form for the short messages of webhooks.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "CTLS.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>

int ctls_require_tls12(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }

int ctls_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

void ctls_set_nonblocking_modes(SSL_CTX *ctx) {
    // Idle connections (most of a pool, most of the time) give their 16 KB record buffers back.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
}

static const EVP_MD *digest_for(int algorithm) {
    switch (algorithm) {
    case 1: return EVP_sha1();
    case 256: return EVP_sha256();
    case 512: return EVP_sha512();
    default: return NULL;
    }
}

int ctls_hmac(int algorithm, const void *key, size_t key_length, const void *data, size_t length, unsigned char *out) {
    const EVP_MD *md = digest_for(algorithm);
    unsigned int written = 0;
    static const unsigned char empty = 0;
    if (md == NULL || key_length > 0x7fffffff) return 0;
    // HMAC() treats a NULL key as "reuse the previous key": an empty key must still be a key.
    if (HMAC(md, key_length > 0 ? key : &empty, (int)key_length, data, length, out, &written) == NULL) return 0;
    return (int)written;
}

int ctls_digest(int algorithm, const void *data, size_t length, unsigned char *out) {
    const EVP_MD *md = digest_for(algorithm);
    unsigned int written = 0;
    if (md == NULL || EVP_Digest(data, length, out, &written, md, NULL) != 1) return 0;
    return (int)written;
}
