// OpenSSL libcrypto, for SHA-256 only (staged-object checksums, S3 payload hashes). libcurl already
// links it, so this adds no new runtime dependency.
#ifndef CCRYPTO_SHIM_H
#define CCRYPTO_SHIM_H
#include <openssl/evp.h>
#endif
