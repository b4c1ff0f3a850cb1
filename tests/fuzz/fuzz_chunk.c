/* fuzz_chunk.c - libFuzzer target for the sample chunk decoder: any input must either be
 * rejected or decode to samples that re-encode and decode to exactly the same samples; a
 * chunk that decodes must also resume, and an append to the resumed chunk must keep them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/chunk.h"

static void check_same(const struct lbw_chunk_sample *a, const struct lbw_chunk_sample *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].ts_ms != b[i].ts_ms || memcmp(&a[i].value, &b[i].value, sizeof(double)) != 0)
            abort();
}

/* Re-encodes the samples from scratch and checks they decode unchanged. */
static void check_reencode(const struct lbw_chunk_sample *in, int n)
{
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    size_t len;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < n; i++)
        if (lbw_chunk_append(&e, in[i].ts_ms, in[i].value) < 0)
            abort();
    const uint8_t *data = lbw_chunk_data(&e, &len);
    if (len > LBW_CHUNK_MAX_BYTES || lbw_chunk_decode(data, len, out) != n)
        abort();
    check_same(in, out, n);
    lbw_chunk_enc_free(&e);
}

/* Resumes the input chunk, checks it is kept byte for byte, appends one more sample. */
static void check_resume(const uint8_t *input, size_t size, const struct lbw_chunk_sample *in,
                         int n)
{
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    size_t len;
    lbw_chunk_enc_init(&e);
    if (lbw_chunk_resume(&e, input, size) < 0)
        abort();
    const uint8_t *data = lbw_chunk_data(&e, &len);
    if (len != size || memcmp(data, input, size) != 0 || (int)e.count != n)
        abort();
    int64_t next = in[n - 1].ts_ms + 1;
    if (in[n - 1].ts_ms < INT64_MAX && lbw_chunk_fits(&e, next)) {
        double v = in[n - 1].value * -3.5;
        if (lbw_chunk_append(&e, next, v) < 0)
            abort();
        data = lbw_chunk_data(&e, &len);
        if (lbw_chunk_decode(data, len, out) != n + 1 || out[n].ts_ms != next ||
            memcmp(&out[n].value, &v, sizeof(v)) != 0)
            abort();
        check_same(in, out, n);
    }
    lbw_chunk_enc_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_chunk_sample in[LBW_CHUNK_MAX_SAMPLES];
    int n = lbw_chunk_decode(data, size, in);
    if (n < 0)
        return 0;
    if (n < 1 || n > LBW_CHUNK_MAX_SAMPLES || size > LBW_CHUNK_MAX_BYTES)
        abort();
    for (int i = 1; i < n; i++)
        if (in[i].ts_ms <= in[i - 1].ts_ms ||
            (uint64_t)in[i].ts_ms - (uint64_t)in[0].ts_ms >= (uint64_t)LBW_CHUNK_SPAN_MS)
            abort();
    check_reencode(in, n);
    check_resume(data, size, in, n);
    return 0;
}
