// zlib's initializers are macros, which Swift cannot call: typed wrappers.
#ifndef ARCHWAY_CZLIB_SHIM_H
#define ARCHWAY_CZLIB_SHIM_H

#include <zlib.h>

/// Inflate that takes gzip or zlib streams (window bits 15, +32: detect the header).
static inline int archway_inflate_init(z_streamp stream) {
    return inflateInit2(stream, 15 + 32);
}

/// Deflate that writes a gzip stream (window bits 15, +16: gzip header and trailer).
static inline int archway_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

#endif
