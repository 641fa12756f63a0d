// FIR passes on one plane, shared by the CPU plugin's kernels (filtered_lrelu_cpu.cpp,
// upfirdn2d_cpu.cpp). A pass along the height of a row-major plane is a combination of whole rows (with
// AVX2, up to 64 columns of an output row held in registers while every tap is added); a pass along the
// width runs on a transposed copy.

#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fundus_cpu {

using i64 = int64_t;

// The rows one output row combines: src[t] = in + row * W and c[t] = tap * scale, t < n. Returns n.
template <class T>
inline i64 fir_taps(const T* in, i64 L, i64 W, const T* g, i64 K, i64 up, i64 down, i64 p0, T scale, i64 o,
                    const T** src, T* c)
{
    const i64 base = o * down - p0;                  // Row of z under tap 0.
    const i64 phase = ((base % up) + up) % up;
    const i64 k0 = phase == 0 ? 0 : up - phase;
    i64 n = 0;
    for (i64 k = k0, i = (base + k0) / up; k < K; k += up, i++) { // Exact: base + k0 is a multiple of up.
        if (i < 0 || i >= L)
            continue;
        src[n] = in + i * W;
        c[n++] = g[k] * scale;
    }
    return n;
}

#if defined(__AVX2__)
// combine_rows for 8 * R float columns from column j, in R independent accumulators (R = 8 covers two FMA
// units of latency 4; the harness of docs/benchmarks.md timed R = 8 and R = 4 alike on the AVX2 EPYC).
template <int R>
inline void combine_block(const float* const* s, const float* c, i64 n, i64 j, float* d)
{
    __m256 a[R];
    for (int r = 0; r < R; r++)
        a[r] = _mm256_setzero_ps();
    for (i64 t = 0; t < n; t++) {
        const __m256 ct = _mm256_set1_ps(c[t]);
        for (int r = 0; r < R; r++)
            a[r] = _mm256_fmadd_ps(ct, _mm256_loadu_ps(s[t] + j + 8 * r), a[r]);
    }
    for (int r = 0; r < R; r++)
        _mm256_storeu_ps(d + j + 8 * r, a[r]);
}
#endif

// dst[j] = sum over t < n of c[t] * src[t][j] for j < W, summed in the order of t.
template <class T>
inline void combine_rows(const T* const* src, const T* c, i64 n, i64 W, T* __restrict__ dst)
{
    i64 j0 = 0;
#if defined(__AVX2__)
    if (std::is_same<T, float>::value) {
        const float* const* s = reinterpret_cast<const float* const*>(src);
        const float* cf = reinterpret_cast<const float*>(c);
        float* d = reinterpret_cast<float*>(dst);
        for (; j0 + 64 <= W; j0 += 64)
            combine_block<8>(s, cf, n, j0, d);
        if (j0 + 32 <= W) {
            combine_block<4>(s, cf, n, j0, d);
            j0 += 32;
        }
        for (; j0 + 8 <= W; j0 += 8)
            combine_block<1>(s, cf, n, j0, d);
        if (j0 < W) {                                // The last W - j0 < 8 columns, masked.
            const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(W - j0)), lanes);
            __m256 a = _mm256_setzero_ps();
            for (i64 t = 0; t < n; t++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(cf[t]), _mm256_maskload_ps(s[t] + j0, mask), a);
            _mm256_maskstore_ps(d + j0, mask, a);
            return;
        }
    }
#endif
    for (i64 j = j0; j < W; j++)
        dst[j] = T(0);
    for (i64 t = 0; t < n; t++)
        for (i64 j = j0; j < W; j++)
            dst[j] += c[t] * src[t][j];
}

// out[o, :] = scale * sum_k g[k] * z[o * down + k, :] for o < M, where z is the input [L, W] with up-1
// zero rows inserted after each row and p0 zero rows before it (negative p0 crops); only the taps that
// land on a real input row are computed.
template <class T>
inline void fir_rows(const T* __restrict__ in, i64 L, i64 W, const T* g, i64 K, i64 up, i64 down, i64 p0, T scale,
                     T* __restrict__ out, i64 M)
{
    const T* src_stack[64];                          // Per-row tap lists: on the stack for the networks'
    T c_stack[64];                                   // filters (at most 24 taps), on the heap beyond 64.
    std::vector<const T*> src_heap(K > 64 ? K : 0);
    std::vector<T> c_heap(K > 64 ? K : 0);
    const T** src = K > 64 ? src_heap.data() : src_stack;
    T* c = K > 64 ? c_heap.data() : c_stack;
    for (i64 o = 0; o < M; o++) {
        const i64 n = fir_taps(in, L, W, g, K, up, down, p0, scale, o, src, c);
        combine_rows(src, c, n, W, out + o * W);
    }
}

#if defined(__AVX2__)
// One 8 x 8 float tile: out[j * ld_out + i] = in[i * ld_in + j] for i, j < 8.
inline void transpose8x8(const float* in, i64 ld_in, float* out, i64 ld_out)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(in + i * ld_in);
    for (int i = 0; i < 8; i += 2) {                 // Interleave row pairs.
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4)                   // Four-row groups of each column, per 128-bit half.
        for (int k = 0; k < 2; k++) {
            u[i + 2 * k] = _mm256_shuffle_ps(t[i + k], t[i + k + 2], _MM_SHUFFLE(1, 0, 1, 0));
            u[i + 2 * k + 1] = _mm256_shuffle_ps(t[i + k], t[i + k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        }
    for (int j = 0; j < 4; j++) {                    // Rows 0-3 and 4-7 of columns j and j + 4.
        _mm256_storeu_ps(out + j * ld_out, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
        _mm256_storeu_ps(out + (j + 4) * ld_out, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
    }
}
#endif

// [rows, cols] -> [cols, rows], in 8 x 8 tiles (AVX2 for float tiles that are whole).
template <class T>
inline void transpose(const T* __restrict__ in, i64 rows, i64 cols, T* __restrict__ out)
{
    for (i64 r0 = 0; r0 < rows; r0 += 8)
        for (i64 c0 = 0; c0 < cols; c0 += 8) {
#if defined(__AVX2__)
            if (std::is_same<T, float>::value && r0 + 8 <= rows && c0 + 8 <= cols) {
                transpose8x8(reinterpret_cast<const float*>(in) + r0 * cols + c0, cols,
                             reinterpret_cast<float*>(out) + c0 * rows + r0, rows);
                continue;
            }
#endif
            for (i64 r = r0; r < std::min(rows, r0 + 8); r++)
                for (i64 c = c0; c < std::min(cols, c0 + 8); c++)
                    out[c * rows + r] = in[r * cols + c];
        }
}

} // namespace fundus_cpu
