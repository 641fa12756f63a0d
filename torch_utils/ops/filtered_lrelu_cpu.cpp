// CPU kernel of filtered_lrelu for separable (1-D) filters: the kernel entry point of docs/kernels.md,
// filtered_lrelu(x, fu, fd, b, si, ...) -> (y, so, return_code), for float32/float64 CPU tensors.
//
// One plane (one channel of one image) at a time, planes spread over torch's intra-op threads. A plane's
// four FIR passes run as row combinations (output row = sum of tap * input row), the form a compiler
// vectorises; the two width passes run on transposed copies so that they are row combinations too:
//
//   x + b -> transpose -> width up (fu, gain * up^2) -> transpose -> height up (fu) -> activation
//         -> height down (fd) -> transpose -> width down (fd) -> transpose -> y
//
// Every pass computes only the taps that meet a non-zero (polyphase) input, with no padded or
// zero-inserted copy. The activation writes or reads the 2-bit sign tensor of docs/kernels.md in the
// reference kernel's layout, so either kernel reads what the other wrote. Configurations it does not
// handle (2-D filters, other dtypes, write mode with gain <= 0) return code -1; the caller then runs
// its PyTorch path. The specification is _filtered_lrelu_ref in filtered_lrelu.py.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include <tuple>
#include <vector>

#include "cpu_fir.h"

using fundus_cpu::i64;
using fundus_cpu::fir_rows;
using fundus_cpu::transpose;

//----------------------------------------------------------------------------
// The activation on one row of a plane (the FIR passes are in cpu_fir.h).

// Bit k of m to bit 2k (k < 8): eight 1-bit flags as eight 2-bit codes.
static constexpr uint16_t spread8(uint32_t m)
{
    m = (m | (m << 4)) & 0x0F0Fu;
    m = (m | (m << 2)) & 0x3333u;
    return uint16_t((m | (m << 1)) & 0x5555u);
}

// spread8 of every byte, looked up in the activation's inner loop.
struct SpreadTable {
    uint16_t codes[256];
    constexpr SpreadTable() : codes() {
        for (int m = 0; m < 256; m++)
            codes[m] = spread8(uint32_t(m));
    }
};
static constexpr SpreadTable kSpread;

#if defined(__AVX2__)
// activate_row's main loop for float rows, eight lanes at a time (the same operations, so the same
// results); returns how many elements it did (whole groups of eight).
static i64 activate_avx2(float* t, i64 w, float slope, float c, uint8_t* signs, bool& over)
{
    const __m256 zero = _mm256_setzero_ps(), s = _mm256_set1_ps(slope), hi = _mm256_set1_ps(c), lo = _mm256_set1_ps(-c);
    const bool clamped = c < std::numeric_limits<float>::infinity();
    __m256 out = zero;
    i64 j0 = 0;
    for (; j0 + 8 <= w; j0 += 8) {
        const __m256 v = _mm256_loadu_ps(t + j0);
        const __m256 a = _mm256_add_ps(_mm256_max_ps(zero, v), _mm256_mul_ps(s, _mm256_min_ps(zero, v))); // NaN stays NaN.
        if (clamped)
            out = _mm256_or_ps(out, _mm256_or_ps(_mm256_cmp_ps(a, hi, _CMP_GT_OQ), _mm256_cmp_ps(a, lo, _CMP_LT_OQ)));
        _mm256_storeu_ps(t + j0, a);
        if (signs) {                            // x86 is little-endian: elements 0-3 go to the first byte.
            const uint16_t codes = kSpread.codes[_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ))];
            std::memcpy(signs + j0 / 4, &codes, 2);
        }
    }
    over = over || _mm256_movemask_ps(out) != 0;
    return j0;
}
#endif

// Write mode on one row of the pre-activation t (gain folded in): t = clamp(lrelu(t)) in place and,
// where signs is given, its codes packed into signs[0, sign_bytes) (0: t >= 0, 1: t < 0, 2/3: clamped
// at +/-clamp; element 4*i + j in bits 2j, 2j+1 of byte i; codes past w are 0). Eight elements make
// two bytes; the clamp codes are set in a second pass over the rare rows where some value exceeds it.
template <class T>
static void activate_row(T* __restrict__ t, i64 w, T slope, double clamp, uint8_t* __restrict__ signs, i64 sign_bytes)
{
    const T c = clamp >= 0 ? T(clamp) : std::numeric_limits<T>::infinity();
    bool over = false;
    i64 j0 = 0;
#if defined(__AVX2__)
    if (std::is_same<T, float>::value)
        j0 = activate_avx2(reinterpret_cast<float*>(t), w, float(slope), float(c), signs, over);
#endif
    for (; j0 < w; j0 += 8) {
        const int n = int(std::min<i64>(8, w - j0));
        uint32_t neg_mask = 0;
        for (int k = 0; k < n; k++) {
            const T v = t[j0 + k];
            const T a = std::max(v, T(0)) + slope * std::min(v, T(0)); // lrelu without a branch (signs are random).
            neg_mask |= uint32_t(v < 0) << k;
            over |= (a > c) | (a < -c);
            t[j0 + k] = a;
        }
        if (signs) {
            const uint32_t codes = kSpread.codes[neg_mask];
            signs[j0 / 4] = uint8_t(codes);
            if (j0 / 4 + 1 < sign_bytes)
                signs[j0 / 4 + 1] = uint8_t(codes >> 8);
        }
    }
    if (signs)
        for (i64 i = (w + 7) / 8 * 2; i < sign_bytes; i++)
            signs[i] = 0;
    if (!over)
        return;
    for (i64 j = 0; j < w; j++) {
        const int code = t[j] > c ? 2 : (t[j] < -c ? 3 : -1);
        if (code < 0)
            continue;
        t[j] = code == 2 ? c : -c;
        if (signs) {
            const int shift = 2 * int(j & 3);
            signs[j >> 2] = uint8_t((signs[j >> 2] & ~(3 << shift)) | (code << shift));
        }
    }
}

#if defined(__AVX2__)
// read_row's loop for float rows from column j on, eight lanes at a time while the 4 bytes that hold a
// group's codes lie inside the row (columns j + sx >= 0); returns the first column it did not do.
static i64 read_avx2(float* t, i64 j, i64 w, const uint8_t* row, i64 ws, i64 sx, float slope)
{
    const __m256 lut = _mm256_setr_ps(1.0f, slope, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f);
    const __m256i shifts = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), three = _mm256_set1_epi32(3);
    for (; j + 8 <= w; j += 8) {
        const i64 c = j + sx, byte = c >> 2;
        if (byte + 4 > ws)
            break;
        uint32_t word;
        std::memcpy(&word, row + byte, 4);      // x86: little-endian, so code k of the group is bits 2k, 2k+1.
        word >>= 2 * (c & 3);
        const __m256i codes = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(int(word)), shifts), three);
        _mm256_storeu_ps(t + j, _mm256_mul_ps(_mm256_loadu_ps(t + j), _mm256_permutevar8x32_ps(lut, codes)));
    }
    return j;
}
#endif

// Read mode on one row i of the gradient t (gain folded in): t *= derivative of the code read from the
// sign plane s [hs, ws bytes] at (i + sy, j + sx); zero outside it.
template <class T>
static void read_row(T* __restrict__ t, i64 w, i64 i, const uint8_t* s, i64 hs, i64 ws, i64 sx, i64 sy, T slope)
{
    const i64 r = i + sy;
    if (r < 0 || r >= hs) {
        for (i64 j = 0; j < w; j++)
            t[j] = T(0);
        return;
    }
    const uint8_t* row = s + r * ws;
    const T lut[4] = {T(1), slope, T(0), T(0)};
    i64 j = 0;
    for (; j < w && j + sx < 0; j++)
        t[j] = T(0);
#if defined(__AVX2__)
    if (std::is_same<T, float>::value)
        j = read_avx2(reinterpret_cast<float*>(t), j, w, row, ws, sx, float(slope));
#endif
    for (; j < w; j++) {
        const i64 c = j + sx;
        t[j] = c >= 4 * ws ? T(0) : t[j] * lut[(row[c >> 2] >> (2 * (c & 3))) & 3];
    }
}

//----------------------------------------------------------------------------

struct Geometry {
    i64 planes, channels, h, w, mid_h, mid_w, out_h, out_w, ku, kd, up, down, px0, py0;
    i64 sx, sy, hs, ws, sign_bytes; // Read mode: offsets and size of si; write mode: bytes per row of so.
};

enum Mode { MODE_PLAIN = 0, MODE_WRITE = 1, MODE_READ = 2 };

template <class T>
static void run_planes(const Geometry g, Mode mode, const T* x, const T* gu, const T* gd, const T* b, T scale, T slope,
                       double clamp, const uint8_t* si, uint8_t* so, T* y)
{
    at::parallel_for(0, g.planes, 1, [&](i64 begin, i64 end) {
        std::vector<T> xt(g.w * g.h), wide_t(g.mid_w * g.h), wide(g.h * g.mid_w), mid(g.mid_h * g.mid_w);
        std::vector<T> low(g.out_h * g.mid_w), low_t(g.mid_w * g.out_h), out_t(g.out_w * g.out_h);
        for (i64 p = begin; p < end; p++) {
            const T* xp = x + p * g.h * g.w;
            const T bias = b ? b[p % g.channels] : T(0);
            transpose(xp, g.h, g.w, xt.data());                   // x + b, transposed: [w, h].
            for (i64 i = 0; i < g.w * g.h; i++)
                xt[i] += bias;
            fir_rows(xt.data(), g.w, g.h, gu, g.ku, g.up, 1, g.px0, scale, wide_t.data(), g.mid_w);
            transpose(wide_t.data(), g.mid_w, g.h, wide.data());  // [h, mid_w]
            fir_rows(wide.data(), g.h, g.mid_w, gu, g.ku, g.up, 1, g.py0, T(1), mid.data(), g.mid_h);
            for (i64 i = 0; i < g.mid_h; i++) {
                T* row = mid.data() + i * g.mid_w;
                if (mode == MODE_READ) {
                    read_row(row, g.mid_w, i, si + p * g.hs * g.ws, g.hs, g.ws, g.sx, g.sy, slope);
                } else {
                    activate_row(row, g.mid_w, slope, clamp, mode == MODE_WRITE ? so + (p * g.mid_h + i) * g.sign_bytes : nullptr,
                                 g.sign_bytes);
                }
            }
            fir_rows(mid.data(), g.mid_h, g.mid_w, gd, g.kd, 1, g.down, 0, T(1), low.data(), g.out_h);
            transpose(low.data(), g.out_h, g.mid_w, low_t.data());  // [mid_w, out_h]
            fir_rows(low_t.data(), g.mid_w, g.out_h, gd, g.kd, 1, g.down, 0, T(1), out_t.data(), g.out_w);
            transpose(out_t.data(), g.out_w, g.out_h, y + p * g.out_h * g.out_w);
        }
    });
}

//----------------------------------------------------------------------------
// Entry point (the kernel object's filtered_lrelu; argument order and meaning as in docs/kernels.md).

std::tuple<at::Tensor, at::Tensor, int> filtered_lrelu(
    at::Tensor x, at::Tensor fu, at::Tensor fd, at::Tensor b, at::Tensor si,
    int64_t up, int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, int64_t sx, int64_t sy,
    double gain, double slope, double clamp, bool flip_filter, bool write_signs)
{
    auto empty_u8 = at::empty({0}, x.options().dtype(at::kByte));
    const bool read = si.numel() > 0;
    const bool handled = x.device().is_cpu() && x.dim() == 4 && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)
                         && fu.dim() == 1 && fd.dim() == 1 && up >= 1 && down >= 1 && (read || gain > 0);
    if (!handled)
        return std::make_tuple(at::Tensor(), empty_u8, -1);
    TORCH_CHECK(b.numel() == 0 || (b.dim() == 1 && b.size(0) == x.size(1)), "filtered_lrelu (CPU kernel): b must have C = ", x.size(1), " elements");
    Geometry g;
    g.planes = x.size(0) * x.size(1); g.channels = x.size(1); g.h = x.size(2); g.w = x.size(3);
    g.ku = fu.size(0); g.kd = fd.size(0); g.up = up; g.down = down; g.px0 = px0; g.py0 = py0;
    g.mid_h = g.h * up + py0 + py1 - g.ku + 1;
    g.mid_w = g.w * up + px0 + px1 - g.ku + 1;
    g.out_h = (g.mid_h - g.kd) / down + 1;
    g.out_w = (g.mid_w - g.kd) / down + 1;
    TORCH_CHECK(g.mid_h >= g.kd && g.mid_w >= g.kd, "filtered_lrelu (CPU kernel): padding leaves an empty output");
    TORCH_CHECK(!read || (si.scalar_type() == at::kByte && si.dim() == 4 && si.size(0) == x.size(0) && si.size(1) == x.size(1)),
                "filtered_lrelu (CPU kernel): si must be uint8 [N, C, H, W/4] with the N and C of x");
    g.sx = sx; g.sy = sy;
    g.hs = read ? si.size(2) : 0;
    g.ws = read ? si.size(3) : 0;
    g.sign_bytes = (g.mid_w + 15) / 16 * 4;
    const Mode mode = read ? MODE_READ : (write_signs ? MODE_WRITE : MODE_PLAIN);

    x = x.contiguous();
    auto opts = x.options();
    auto gu = (flip_filter ? fu : fu.flip(0)).to(opts).contiguous();  // Correlation taps.
    auto gd = (flip_filter ? fd : fd.flip(0)).to(opts).contiguous();
    auto bb = b.numel() ? b.to(opts).contiguous() : b;
    auto sic = read ? si.contiguous() : si;
    auto y = at::empty({x.size(0), x.size(1), g.out_h, g.out_w}, opts);
    auto so = mode == MODE_WRITE ? at::empty({x.size(0), x.size(1), g.mid_h, g.sign_bytes}, opts.dtype(at::kByte)) : empty_u8;
    const double scale = gain * double(up * up);  // gain * lrelu(t) = lrelu(gain * t) for gain > 0; read mode is linear.
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "filtered_lrelu_cpu", [&] {
        run_planes<scalar_t>(g, mode, x.data_ptr<scalar_t>(), gu.data_ptr<scalar_t>(), gd.data_ptr<scalar_t>(),
                             bb.numel() ? bb.data_ptr<scalar_t>() : nullptr, scalar_t(scale), scalar_t(slope), clamp,
                             read ? sic.data_ptr<uint8_t>() : nullptr, mode == MODE_WRITE ? so.data_ptr<uint8_t>() : nullptr,
                             y.data_ptr<scalar_t>());
    });
    return std::make_tuple(y, so, 0);
}
