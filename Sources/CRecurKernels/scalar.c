/* The portable scalar kernels: the fallback on every CPU and the reference the SIMD kernels are checked
 * against (layouts and contracts: recur_kernels.h and internal.h). */
#include "internal.h"
#include <math.h>

/* ---- scalar kernels ----------------------------------------------------------------------------- */

void rk_f32_scalar(float *y, const float *w, const float *x, long rows, long cols, int acc) {
    for (long r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        long c = 0;
        for (; c + 4 <= cols; c += 4) {
            s0 += row[c] * x[c]; s1 += row[c + 1] * x[c + 1];
            s2 += row[c + 2] * x[c + 2]; s3 += row[c + 3] * x[c + 3];
        }
        for (; c < cols; c++) s0 += row[c] * x[c];
        float s = (s0 + s1) + (s2 + s3);
        y[r] = acc ? y[r] + s : s;
    }
}

void rk_f16_scalar(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc) {
    for (long r = 0; r < rows; r++) {
        const uint16_t *row = w + r * cols;
        float s = 0;
        for (long c = 0; c < cols; c++) s += rk_half_to_float(row[c]) * x[c];
        y[r] = acc ? y[r] + s : s;
    }
}

void rk_q8_scalar(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    const long nb = x->nb;
    const unsigned char *base = (const unsigned char *)w;
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = base + r * 36 * nb;
        const int8_t *q = (const int8_t *)(row + 4 * nb);
        float s = 0;
        for (long b = 0; b < nb; b++) {
            int32_t dot = 0;
            for (int j = 0; j < 32; j++) dot += (int32_t)q[b * 32 + j] * x->q[b * 32 + j];
            s += rk_load_f32(row + 4 * b) * (x->d[b] * (float)dot);
        }
        y[r] = acc ? y[r] + s : s;
    }
}

void rk_q4_scalar(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    const long nb = x->nb;
    const unsigned char *base = (const unsigned char *)w;
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = base + r * 20 * nb;
        const unsigned char *q = row + 4 * nb;
        float s = 0;
        for (long b = 0; b < nb; b++) {
            int32_t dot = 0;
            const int8_t *xb = x->q + b * 32;
            for (int j = 0; j < 16; j++) {
                unsigned char byte = q[b * 16 + j];
                dot += ((int32_t)(byte & 15) - 8) * xb[j] + ((int32_t)(byte >> 4) - 8) * xb[j + 16];
            }
            s += rk_load_f32(row + 4 * b) * (x->d[b] * (float)dot);
        }
        y[r] = acc ? y[r] + s : s;
    }
}

/* y[r] = (D · Σ_c q_c · xq_c) · s_r, the sum exact in int32 (|q·xq| ≤ 8128, so up to 264,000 columns). */
void rk_q8r_scalar(float *y, const void *w, const rk_xr *x, long rows, int acc) {
    const long n = (x->cols + 31) & ~31L;
    const unsigned char *base = (const unsigned char *)w;
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = base + r * (4 + n);
        const int8_t *q = (const int8_t *)(row + 4);
        int32_t dot = 0;
        for (long c = 0; c < n; c++) dot += (int32_t)q[c] * x->q[c];
        float s = ((float)dot * x->d) * rk_load_f32(row);
        y[r] = acc ? y[r] + s : s;
    }
}

/* q8ri: y[r] = ((float)(Σ_c q[r, c] · xq_c) · D) · s_r, exactly what rk_q8r_scalar computes from q8r's bytes.
 * A group at a time: 16 int32 sums, each chunk adding 4 columns of the 16 rows (a loop compilers vectorize). */
void rk_q8ri_scalar(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc) {
    const long n = (x->cols + 31) & ~31L, gb = rk_q8ri_group_bytes(x->cols), end = row0 + rows;
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        const int8_t *q = (const int8_t *)(G + 128);
        int32_t dot[16] = {0};
        for (long k = 0; k < n / 4; k++, q += 64) {
            const int8_t *xk = x->q + 4 * k;
            for (int i = 0; i < 16; i++)
                dot[i] += q[4 * i] * xk[0] + q[4 * i + 1] * xk[1] + q[4 * i + 2] * xk[2] + q[4 * i + 3] * xk[3];
        }
        float v[16];
        for (int i = 0; i < 16; i++) v[i] = ((float)dot[i] * x->d) * rk_load_f32(G + 4 * i);
        rk_put_group(y, v, g, row0, end, acc);
    }
}

/* q4i: per group of 16 rows and block b, dot_i = Σ_{c∈b} nib_i[c] · xq_c − 8 · Σ_{c∈b} xq_c (exact int32:
 * Σ (nib − 8) · xq, the "− 8" added as n8_b), then acc_i = fma((float)dot_i, s_{i,b} · d_b, acc_i) in block
 * order, y_i = acc_i: the float operations of the SIMD kernels, so every level gives the same bits. */
void rk_q4i_scalar(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc) {
    const long nb = x->nb, gb = 320 * nb, end = row0 + rows;
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        float a[16] = {0};
        for (long b = 0; b < nb; b++) {
            const unsigned char *B = G + 320 * b;
            const int8_t *xq = x->q + 32 * b;
            int32_t dot[16];
            for (int i = 0; i < 16; i++) dot[i] = x->n8[b];
            for (int m = 0; m < 4; m++)
                for (int i = 0; i < 16; i++)
                    for (int j = 0; j < 4; j++) {
                        const unsigned char byte = B[64 + 64 * m + 4 * i + j];
                        dot[i] += (int32_t)(byte & 15) * xq[8 * m + j] + (int32_t)(byte >> 4) * xq[8 * m + 4 + j];
                    }
            for (int i = 0; i < 16; i++) a[i] = fmaf((float)dot[i], rk_load_f32(B + 4 * i) * x->d[b], a[i]);
        }
        rk_put_group(y, a, g, row0, end, acc);
    }
}

/* D = max|x| / 64; xq = clamp(round-half-even(x · 64 / max|x|), −64, 64) (NaN maps to −64). */
void rk_quantize_xr_scalar(void *buf, const float *x, long cols) {
    float amax = 0;
    for (long c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(x[c]));
    const float inv = rk_xr_begin(buf, amax);
    int8_t *q = (int8_t *)buf + 64;
    int32_t sum = 0;
    for (long c = 0; c < cols; c++) {
        q[c] = (int8_t)nearbyintf(fminf(fmaxf(x[c] * inv, -64.0f), 64.0f));
        sum += q[c];
    }
    for (long c = cols; c < rk_ncp(cols); c++) q[c] = 0;
    memcpy((unsigned char *)buf + 4, &sum, 4);
    rk_xr_fill_u(buf, cols);
}

/* Fills qp, the copy of q in the order of AVX-512 q4 nibbles (internal.h). */
void rk_permute_xq(unsigned char *buf, long cols) {
    rk_xq v = rk_xq_view(buf, cols);
    int8_t *qp = (int8_t *)v.qp;
    for (long g = 0; g < v.nbp / 4; g++)
        for (int i = 0; i < 4; i++) {
            memcpy(qp + g * 128 + i * 16, v.q + (4 * g + i) * 32, 16);
            memcpy(qp + g * 128 + 64 + i * 16, v.q + (4 * g + i) * 32 + 16, 16);
        }
}

/* d_b = max|x| / 127 over the block; xq = clamp(round-half-even(x · 127 / max|x|), −127, 127). */
void rk_quantize_scalar(void *buf, const float *x, long cols) {
    const rk_xq_out v = rk_xq_zeroed(buf, cols);
    float *d = v.d, *t8 = v.t8, *t128 = v.t128;
    int32_t *n8 = v.n8;
    int8_t *q = v.q;
    for (long b = 0; b < v.nb; b++) {
        long lo = b * 32, hi = lo + 32 < cols ? lo + 32 : cols;
        float amax = 0;
        for (long c = lo; c < hi; c++) amax = fmaxf(amax, fabsf(x[c]));
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        d[b] = amax / 127.0f;
        int32_t sum = 0;
        for (long c = lo; c < hi; c++) {
            float t = fminf(fmaxf(x[c] * inv, -127.0f), 127.0f);
            q[c] = (int8_t)nearbyintf(t);
            sum += q[c];
        }
        n8[b] = -8 * sum;
        t8[b] = 8.0f * d[b] * (float)sum;
        t128[b] = 128.0f * d[b] * (float)sum;
    }
}
