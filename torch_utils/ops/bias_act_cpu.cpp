// CPU kernel of bias_act for the piecewise-linear activations (linear, relu, lrelu): one pass over the
// tensor where the aten path of bias_act.py (_bias_act_cpu_kernel) makes three or four.
//
//   grad 0:  y  = clamp(act(x + b) * gain)                   in the reference's order of operations;
//   grad 1:  dx = dy * act'(y) * gain, 0 unless |y| < clamp  (x carries dy, yref is y).
//
// Both equal the aten path bit for bit, NaN, infinities and signed zeros included (the same float
// operations in the same order). Other activations, grad mode 2, other dtypes and non-contiguous
// tensors return code -1 and the caller runs its PyTorch path. The specification is _bias_act_ref in
// bias_act.py (and _bias_act_kernel for the derivative modes).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

using i64 = int64_t;

enum Act { ACT_LINEAR = 1, ACT_RELU = 2, ACT_LRELU = 3 };

template <class T>
struct Params {
    T alpha, gain, clamp;   // Without clamping clamp is +inf, which leaves every value as it is.
    bool bias, clamped;     // Add the bias (grad 0); clamp was given (clamp >= 0).
};

// grad 0 on elements [i0, n) of a run sharing the bias value `bias`, in the reference's order; the
// activation and the bias flag are template arguments, and multiplying by a gain of 1 or clamping to
// +-inf is exact, so the loop has no data-dependent branch.
template <class T, int ACT, bool BIAS>
inline void forward_tail(const T* __restrict__ x, T* __restrict__ y, i64 i0, i64 n, T bias, T alpha, T gain, T clamp)
{
    for (i64 i = i0; i < n; i++) {
        T v = BIAS ? x[i] + bias : x[i];    // Without a bias x is kept as it is (x + 0 would turn -0 into +0).
        if (ACT == ACT_RELU)
            v = v < T(0) ? T(0) : v;
        else if (ACT == ACT_LRELU)
            v = v > T(0) ? v : v * alpha;
        v = v * gain;
        v = v < -clamp ? -clamp : (v > clamp ? clamp : v);
        y[i] = v;
    }
}

// grad 1 on elements [i0, n): dx from dy and the forward's output y.
template <class T, int ACT, bool CLAMP>
inline void gradient_tail(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dx, i64 i0, i64 n, T alpha, T gain, T clamp)
{
    for (i64 i = i0; i < n; i++) {
        T g = dy[i];
        if (ACT == ACT_RELU)
            g = y[i] <= T(0) ? T(0) : g;
        else if (ACT == ACT_LRELU)
            g = y[i] > T(0) ? g : g * alpha;
        g = g * gain;
        if (CLAMP)
            g = (y[i] > -clamp && y[i] < clamp) ? g : T(0); // Also 0 where y is NaN, as hardtanh_backward gives.
        dx[i] = g;
    }
}

// The same two loops for float, eight lanes at a time: the same operations as the tails (ordered
// compares are false for NaN, as C++'s are), so the same results. Each returns how many it did.
#if defined(__AVX2__)
template <int ACT, bool BIAS>
inline i64 forward_avx2(const float* x, float* y, i64 n, float bias, float alpha, float gain, float clamp)
{
    const __m256 zero = _mm256_setzero_ps(), b = _mm256_set1_ps(bias), a = _mm256_set1_ps(alpha), g = _mm256_set1_ps(gain);
    const __m256 hi = _mm256_set1_ps(clamp), lo = _mm256_set1_ps(-clamp);
    i64 i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (BIAS)
            v = _mm256_add_ps(v, b);
        if (ACT == ACT_RELU)
            v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
        else if (ACT == ACT_LRELU)
            v = _mm256_blendv_ps(_mm256_mul_ps(v, a), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
        v = _mm256_mul_ps(v, g);
        v = _mm256_blendv_ps(v, lo, _mm256_cmp_ps(v, lo, _CMP_LT_OQ));
        v = _mm256_blendv_ps(v, hi, _mm256_cmp_ps(v, hi, _CMP_GT_OQ));
        _mm256_storeu_ps(y + i, v);
    }
    return i;
}

template <int ACT, bool CLAMP>
inline i64 gradient_avx2(const float* dy, const float* y, float* dx, i64 n, float alpha, float gain, float clamp)
{
    const __m256 zero = _mm256_setzero_ps(), a = _mm256_set1_ps(alpha), g = _mm256_set1_ps(gain);
    const __m256 hi = _mm256_set1_ps(clamp), lo = _mm256_set1_ps(-clamp);
    i64 i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 yv = _mm256_loadu_ps(y + i);
        __m256 d = _mm256_loadu_ps(dy + i);
        if (ACT == ACT_RELU)
            d = _mm256_blendv_ps(d, zero, _mm256_cmp_ps(yv, zero, _CMP_LE_OQ));
        else if (ACT == ACT_LRELU)
            d = _mm256_blendv_ps(_mm256_mul_ps(d, a), d, _mm256_cmp_ps(yv, zero, _CMP_GT_OQ));
        d = _mm256_mul_ps(d, g);
        if (CLAMP)
            d = _mm256_and_ps(d, _mm256_and_ps(_mm256_cmp_ps(yv, lo, _CMP_GT_OQ), _mm256_cmp_ps(yv, hi, _CMP_LT_OQ)));
        _mm256_storeu_ps(dx + i, d);
    }
    return i;
}

#endif

template <class T, int ACT, bool BIAS>
inline void forward_run(const T* x, T* y, i64 n, T bias, T alpha, T gain, T clamp)
{
    i64 i0 = 0;
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>)
        i0 = forward_avx2<ACT, BIAS>(x, y, n, bias, alpha, gain, clamp);
#endif
    forward_tail<T, ACT, BIAS>(x, y, i0, n, bias, alpha, gain, clamp);
}

template <class T, int ACT, bool CLAMP>
inline void gradient_run(const T* dy, const T* y, T* dx, i64 n, T alpha, T gain, T clamp)
{
    i64 i0 = 0;
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>)
        i0 = gradient_avx2<ACT, CLAMP>(dy, y, dx, n, alpha, gain, clamp);
#endif
    gradient_tail<T, ACT, CLAMP>(dy, y, dx, i0, n, alpha, gain, clamp);
}

template <class T, int ACT, bool FLAG>
void run(const T* x, const T* b, const T* yref, T* out, i64 outer, i64 channels, i64 inner, bool gradient, const Params<T>& p)
{
    // FLAG is p.bias for grad 0 and p.clamped for grad 1. Work items are runs of `inner` elements with one
    // bias value (channel r % channels of run r); when inner is 1 (x [N, C], dim 1) an item is a row of C
    // elements instead.
    const bool rows = inner == 1;
    const i64 items = rows ? outer : outer * channels;
    const i64 len = rows ? channels : inner;
    const i64 grain = std::max<i64>(1, 32768 / len);
    const T alpha = p.alpha, gain = p.gain, clamp = p.clamp;
    at::parallel_for(0, items, grain, [&](i64 begin, i64 end) {
        for (i64 r = begin; r < end; r++) {
            const i64 base = r * len;
            if (gradient)
                gradient_run<T, ACT, FLAG>(x + base, yref + base, out + base, len, alpha, gain, clamp);
            else if (!rows || !FLAG)
                forward_run<T, ACT, FLAG>(x + base, out + base, len, FLAG ? b[r % channels] : T(0), alpha, gain, clamp);
            else
                for (i64 c = 0; c < len; c++)
                    forward_run<T, ACT, FLAG>(x + base + c, out + base + c, 1, b[c], alpha, gain, clamp);
        }
    });
}

template <class T, int ACT>
void run_act(const T* x, const T* b, const T* yref, T* out, i64 outer, i64 channels, i64 inner, bool gradient, const Params<T>& p)
{
    if (gradient ? p.clamped : p.bias)
        run<T, ACT, true>(x, b, yref, out, outer, channels, inner, gradient, p);
    else
        run<T, ACT, false>(x, b, yref, out, outer, channels, inner, gradient, p);
}

} // namespace

//----------------------------------------------------------------------------
// Entry point: bias_act(x, b, yref, grad, dim, act, alpha, gain, clamp) -> (out, return_code); the
// arguments mean what they mean for the kernel object's bias_act (docs/kernels.md); b may be empty.

std::tuple<at::Tensor, int> bias_act(at::Tensor x, at::Tensor b, at::Tensor yref, int64_t grad, int64_t dim,
                                     int64_t act, double alpha, double gain, double clamp)
{
    const bool typed = x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble;
    const bool handled = x.device().is_cpu() && typed && x.is_contiguous() && (grad == 0 || grad == 1)
                         && act >= ACT_LINEAR && act <= ACT_LRELU && dim >= 0 && dim < std::max<int64_t>(x.dim(), 1)
                         && (b.numel() == 0 || (b.dim() == 1 && b.scalar_type() == x.scalar_type() && b.is_contiguous()
                                                && x.dim() > 0 && b.size(0) == x.size(dim)))
                         && (grad == 0 || (yref.sizes() == x.sizes() && yref.scalar_type() == x.scalar_type() && yref.is_contiguous()));
    if (!handled)
        return std::make_tuple(at::Tensor(), -1);
    i64 outer = 1, inner = 1;
    for (i64 d = 0; d < dim; d++)
        outer *= x.size(d);
    for (i64 d = dim + 1; d < x.dim(); d++)
        inner *= x.size(d);
    const i64 channels = x.dim() > 0 ? x.size(dim) : 1;
    auto out = at::empty_like(x);
    if (x.numel() == 0)
        return std::make_tuple(out, 0);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_cpu", [&] {
        const scalar_t inf = std::numeric_limits<scalar_t>::infinity();
        const Params<scalar_t> p{scalar_t(alpha), scalar_t(gain), clamp >= 0 ? scalar_t(clamp) : inf, grad == 0 && b.numel() > 0, clamp >= 0};
        const scalar_t* bp = p.bias ? b.data_ptr<scalar_t>() : nullptr;
        const scalar_t* yp = grad == 1 ? yref.data_ptr<scalar_t>() : nullptr;
        auto go = [&](auto fn) { fn(x.data_ptr<scalar_t>(), bp, yp, out.data_ptr<scalar_t>(), outer, channels, inner, grad == 1, p); };
        if (act == ACT_LINEAR)
            go(run_act<scalar_t, ACT_LINEAR>);
        else if (act == ACT_RELU)
            go(run_act<scalar_t, ACT_RELU>);
        else
            go(run_act<scalar_t, ACT_LRELU>);
    });
    return std::make_tuple(out, 0);
}
