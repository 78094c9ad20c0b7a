// Intel ISA-L's igzip: deflate several times faster than zlib at level 1, producing standard gzip (one member).
// Its stream struct is large and holds internal buffers, so it lives on the heap behind these helpers.
#ifndef CISAL_SHIM_H
#define CISAL_SHIM_H
#include <isa-l/igzip_lib.h>
#include <isa-l/crc64.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct isal_zstream stream;
    uint8_t *level_buf;
} CIsal_deflater;

/// A gzip deflater at `level` (0–3); NULL when out of memory or the level is unknown.
static inline CIsal_deflater *CIsal_deflater_new(int level) {
    uint32_t size;
    switch (level) {
    case 0: size = 0; break;
    case 1: size = ISAL_DEF_LVL1_DEFAULT; break;
    case 2: size = ISAL_DEF_LVL2_DEFAULT; break;
    case 3: size = ISAL_DEF_LVL3_DEFAULT; break;
    default: return NULL;
    }
    CIsal_deflater *d = (CIsal_deflater *)calloc(1, sizeof(CIsal_deflater));
    if (!d) return NULL;
    if (size > 0) {
        d->level_buf = (uint8_t *)malloc(size);
        if (!d->level_buf) { free(d); return NULL; }
    }
    isal_deflate_init(&d->stream);
    d->stream.level = (uint32_t)level;
    d->stream.level_buf = d->level_buf;
    d->stream.level_buf_size = size;
    d->stream.gzip_flag = IGZIP_GZIP;
    return d;
}

static inline void CIsal_deflater_free(CIsal_deflater *d) {
    if (!d) return;
    free(d->level_buf);
    free(d);
}

/// Compresses from `in` into `out`; with `end` nonzero, finishes the stream. Sets how much was consumed and
/// produced, and `*done` once the gzip trailer has been written. Returns ISA-L's status (COMP_OK is 0).
static inline int CIsal_deflate(CIsal_deflater *d, const uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t out_cap,
                                int end, uint32_t *consumed, uint32_t *produced, int *done) {
    d->stream.next_in = (uint8_t *)in;
    d->stream.avail_in = in_len;
    d->stream.next_out = out;
    d->stream.avail_out = out_cap;
    d->stream.end_of_stream = end ? 1 : 0;
    d->stream.flush = NO_FLUSH;
    int rc = isal_deflate(&d->stream);
    *consumed = in_len - d->stream.avail_in;
    *produced = out_cap - d->stream.avail_out;
    *done = d->stream.internal_state.state == ZSTATE_END;
    return rc;
}
// The staged format's content digest: rows compared without their first two fields (channel_name and
// when_retrieved, which differ between two reads of the same data), order-independent (a sum of mixed per-row
// CRC-64s), so a re-read that returns the same records in another order digests the same. ISA-L's CRC-64 runs at
// memory speed; the row walk uses memchr and honours the format's escapes (a byte after an odd run of backslashes
// is data, not a separator).
static inline int CIsal__escaped(const uint8_t *row, const uint8_t *p) {
    size_t n = 0;
    while (p > row && p[-1] == '\\') { p--; n++; }
    return (int)(n & 1);
}

static inline const uint8_t *CIsal__find(const uint8_t *p, const uint8_t *end, uint8_t c, const uint8_t *row) {
    while (p < end) {
        const uint8_t *q = (const uint8_t *)memchr(p, c, (size_t)(end - p));
        if (!q) return end;
        if (!CIsal__escaped(row, q)) return q;
        p = q + 1;
    }
    return end;
}

/// Adds every complete row of `buf` (TAB-separated, LF-terminated) to `*sum` and counts it in `*rows`.
static inline void CIsal_rows_digest(const uint8_t *buf, size_t len, uint64_t *sum, uint64_t *rows) {
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        const uint8_t *nl = CIsal__find(p, end, '\n', p);
        const uint8_t *t1 = CIsal__find(p, nl, '\t', p);
        const uint8_t *t2 = t1 < nl ? CIsal__find(t1 + 1, nl, '\t', p) : nl;
        const uint8_t *from = t2 < nl ? t2 + 1 : nl;
        uint64_t z = crc64_ecma_refl(0, from, (uint64_t)(nl - from)) + (uint64_t)(nl - from) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        *sum += z ^ (z >> 31);
        *rows += 1;
        p = nl + 1;
    }
}
#endif
