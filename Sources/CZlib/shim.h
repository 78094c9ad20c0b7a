// zlib: deflateInit2 / inflateInit2 are macros (they pass ZLIB_VERSION and sizeof(z_stream)): Swift
// cannot call them, so they are wrapped here.
#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>
static inline int CZlib_deflateInit2(z_streamp s, int level, int windowBits) {
    return deflateInit2(s, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
static inline int CZlib_inflateInit2(z_streamp s, int windowBits) { return inflateInit2(s, windowBits); }
#endif
