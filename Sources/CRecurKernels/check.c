/* What a reader checks in quantized weights before a kernel sees them (rk_check_quantized, recur_kernels.h). */
#include "internal.h"
#include <math.h>

/* ---- validation of quantized weights --------------------------------------------------------------- */

/* A scale s is usable when s and s · (largest code magnitude) are finite: every decoded weight is then
 * finite. Codes: q8/q8r/q8ri in −127…127 (−128 would break the sign trick of the SIMD kernels), q4 nibbles
 * 0…15 meaning −8…7. Padding past `cols` is 0 (q4: nibble 8) as docs/FORMAT.md §7 requires. */
static int scale_ok(float s, float most) { return isfinite(s) && isfinite(s * most); }

/* q8ri: the q8r rules per row, each row sum equal to the sum of its codes, padding rows all zero. */
static long check_q8ri(const unsigned char *w, long rows, long cols, const char **what) {
    const long n = (cols + 31) & ~31L, gb = rk_q8ri_group_bytes(cols), groups = (rows + 15) / 16;
    for (long r = 0; r < groups * 16; r++) {
        const unsigned char *g = w + (r / 16) * gb;
        const long i = r % 16;
        const int8_t *q = (const int8_t *)(g + 128 + 4 * i);
        const float s = rk_load_f32(g + 4 * i);
        int32_t sum = 0;
        int low = 0, pad = 0;
        for (long c = 0; c < n; c++) {
            const int8_t v = q[(c / 4) * 64 + c % 4];
            sum += v;
            low |= v == -128;
            if (c >= cols || r >= rows) pad |= v;
        }
        const long at = r < rows ? r + 1 : rows;   /* a padding row's faults are the last row's */
        if (r >= rows && (pad || rk_load_i32(g + 64 + 4 * i) != 0 || s != 0.0f)) {
            *what = "a padding row (past the last row of its group of 16) that is not all zero";
            return at;
        }
        if (!scale_ok(s, 128.0f)) { *what = "a scale whose weights are not finite"; return at; }
        if (low) { *what = "the code -128 (codes are -127...127)"; return at; }
        if (pad) { *what = "non-zero padding past the last column"; return at; }
        if (rk_load_i32(g + 64 + 4 * i) != sum) { *what = "a row sum that is not the sum of its codes"; return at; }
    }
    return 0;
}

/* q4i: q4's rules per row and block (scales whose weights are finite, nibble 8 past the last column), and
 * padding rows all zero (scales 0, nibbles 8). */
static long check_q4i(const unsigned char *w, long rows, long cols, const char **what) {
    const long nb = (cols + 31) / 32, groups = (rows + 15) / 16;
    for (long r = 0; r < groups * 16; r++) {
        const long at = r < rows ? r + 1 : rows;
        for (long b = 0; b < nb; b++) {
            const unsigned char *B = w + (r / 16) * 320 * nb + 320 * b;
            const float s = rk_load_f32(B + 4 * (r % 16));
            int pad = 0;
            for (int j = 0; j < 32; j++) {
                const unsigned char byte = B[64 + 64 * (j / 8) + 4 * (r % 16) + j % 4];
                const int nib = (j % 8) / 4 ? byte >> 4 : byte & 15;
                if (r >= rows || 32 * b + j >= cols) pad |= nib != 8;
            }
            if (r >= rows && (pad || s != 0.0f)) {
                *what = "a padding row (past the last row of its group of 16) that is not all zero";
                return at;
            }
            if (!scale_ok(s, 8.0f)) { *what = "a scale whose weights are not finite"; return at; }
            if (pad) { *what = "padding past the last column that is not nibble 8"; return at; }
        }
    }
    return 0;
}

long rk_check_quantized(int dtype, const void *w, long rows, long cols, const char **what) {
    const long nb = (cols + 31) / 32;
    const unsigned char *base = (const unsigned char *)w;
    *what = "";
    if (dtype == RK_Q8RI) return rows > 0 ? check_q8ri(base, rows, cols, what) : 0;
    if (dtype == RK_Q4I) return rows > 0 ? check_q4i(base, rows, cols, what) : 0;
    for (long r = 0; r < rows; r++) {
        if (dtype == RK_Q8 || dtype == RK_Q8R) {
            const long nscales = dtype == RK_Q8 ? nb : 1;
            const unsigned char *row = base + r * rk_row_bytes(dtype, cols);
            for (long b = 0; b < nscales; b++)
                if (!scale_ok(rk_load_f32(row + 4 * b), 128.0f)) { *what = "a scale whose weights are not finite"; return r + 1; }
            const int8_t *q = (const int8_t *)(row + 4 * nscales);
            int low = 0;
            for (long c = 0; c < cols; c++) low |= q[c] == -128;
            if (low) { *what = "the code -128 (codes are -127...127)"; return r + 1; }
            int pad = 0;
            for (long c = cols; c < nb * 32; c++) pad |= q[c];
            if (pad) { *what = "non-zero padding past the last column"; return r + 1; }
        } else if (dtype == RK_Q4) {
            const unsigned char *row = base + r * rk_row_bytes(dtype, cols);
            for (long b = 0; b < nb; b++)
                if (!scale_ok(rk_load_f32(row + 4 * b), 8.0f)) { *what = "a scale whose weights are not finite"; return r + 1; }
            const unsigned char *q = row + 4 * nb + 16 * (nb - 1);
            for (long j = cols - 32 * (nb - 1); j < 32; j++) {
                int nib = j < 16 ? q[j] & 15 : q[j & 15] >> 4;
                if (nib != 8) { *what = "padding past the last column that is not nibble 8"; return r + 1; }
            }
        }
    }
    return 0;
}
