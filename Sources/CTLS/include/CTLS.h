#ifndef HAPPYRELAY_CTLS_H
#define HAPPYRELAY_CTLS_H

#include <openssl/ssl.h>

// OpenSSL calls that are C macros, which Swift cannot import, as functions.

/// SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION).
int ctls_require_tls12(SSL_CTX *ctx);
/// SSL_set_tlsext_host_name: Server Name Indication.
int ctls_set_server_name(SSL *ssl, const char *name);
/// SSL_CTX_set_mode with partial writes and a moving write buffer, as non-blocking I/O needs.
void ctls_set_nonblocking_modes(SSL_CTX *ctx);

#endif
