// CPU kernel of upfirdn2d for separable filters: the kernel entry point of docs/kernels.md,
// upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain) -> (y, return_code),
// for float32/float64 CPU tensors. The filter may be
//   [taps]      the same taps along x, then along y (the reference's separable form),
//   [1, kw]     along x only; [kh, 1] along y only (the two calls of the separable form),
//   [kh, kw]    an outer product to 2 ulp (the discriminator's [1, 3, 3, 1] x [1, 3, 3, 1]), split into its
//               vertical taps f.sum(1) and horizontal taps f.sum(0) / f.sum(), as upfirdn2d.py's
//               _separable_factors does.
// Any other 2-D filter (stylegan3-r's radial ones) returns code -1, and the caller runs its PyTorch path:
// a non-separable filter is never approximated. The specification is _upfirdn2d_ref in upfirdn2d.py.
//
// One plane (one channel of one image) at a time, planes spread over torch's intra-op threads:
//
//   x -> transpose -> width pass (gain folded in) -> transpose -> height pass -> y
//
// Each pass computes only the taps that meet a real input sample (polyphase), with no zero-stuffed or
// padded copy, and only the outputs that downsampling keeps.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "cpu_fir.h"

using fundus_cpu::i64;
using fundus_cpu::fir_rows;
using fundus_cpu::transpose;

namespace {

struct Axis {
    i64 in, out, taps, up, down, p0, p1;
    bool identity() const { return taps == 1 && up == 1 && down == 1 && p0 == 0 && p1 == 0; }
};

Axis make_axis(i64 in, i64 taps, i64 up, i64 down, i64 p0, i64 p1)
{
    const i64 full = in * up + p0 + p1 - taps;  // Last start position of the filter window.
    TORCH_CHECK(full >= 0, "upfirdn2d (CPU kernel): padding leaves an empty output");
    return Axis{in, full / down + 1, taps, up, down, p0, p1};
}

// The filter as horizontal and vertical correlation taps (double), or false for a 2-D filter that is
// not an outer product.
bool factor_filter(const at::Tensor& f, bool flip, std::vector<double>& gx, std::vector<double>& gy)
{
    auto fd = f.to(at::kDouble).contiguous();
    const double* p = fd.data_ptr<double>();
    if (f.dim() == 1) {
        gx.assign(p, p + f.size(0));
        gy = gx;
    } else if (f.size(0) == 1 || f.size(1) == 1) {
        std::vector<double> taps(p, p + f.numel()), one{1.0};
        gx = f.size(0) == 1 ? taps : one;
        gy = f.size(0) == 1 ? one : taps;
    } else {
        const i64 kh = f.size(0), kw = f.size(1);
        std::vector<double> v(kh, 0.0), h(kw, 0.0);
        double total = 0, peak = 0;
        for (i64 i = 0; i < kh; i++)
            for (i64 j = 0; j < kw; j++) {
                v[i] += p[i * kw + j];
                h[j] += p[i * kw + j];
                total += p[i * kw + j];
                peak = std::max(peak, std::abs(p[i * kw + j]));
            }
        if (total == 0)
            return false;
        for (auto& t : h)
            t /= total;
        const double eps = f.scalar_type() == at::kDouble ? std::numeric_limits<double>::epsilon()
                         : f.scalar_type() == at::kFloat ? double(std::numeric_limits<float>::epsilon())
                         : 1.0 / 1024;                                          // float16
        for (i64 i = 0; i < kh; i++)
            for (i64 j = 0; j < kw; j++)
                if (std::abs(v[i] * h[j] - p[i * kw + j]) > 2 * eps * peak)
                    return false;
        gx = h;
        gy = v;
    }
    if (!flip) { // A true convolution: correlation with the reversed taps.
        std::reverse(gx.begin(), gx.end());
        std::reverse(gy.begin(), gy.end());
    }
    return true;
}

template <class T>
void run_planes(i64 planes, const T* x, const Axis ax, const Axis ay, const T* gx, const T* gy, T gain, T* y)
{
    const i64 h = ay.in, w = ax.in;
    const i64 grain = std::max<i64>(1, 16384 / std::max<i64>(1, h * w + ay.out * ax.out)); // Tiny planes: fewer tasks.
    at::parallel_for(0, planes, grain, [&](i64 begin, i64 end) {
        std::vector<T> xt, wide_t, wide;
        if (!ax.identity()) {
            xt.resize(w * h);
            wide_t.resize(ax.out * h);
            wide.resize(h * ax.out);
        }
        for (i64 p = begin; p < end; p++) {
            const T* plane = x + p * h * w;
            T scale = gain;
            if (!ax.identity()) {
                transpose(plane, h, w, xt.data());                                     // [w, h]
                fir_rows(xt.data(), w, h, gx, ax.taps, ax.up, ax.down, ax.p0, gain, wide_t.data(), ax.out);
                transpose(wide_t.data(), ax.out, h, wide.data());                      // [h, out_w]
                plane = wide.data();
                scale = T(1);
            } else {
                scale = gain * gx[0];
            }
            fir_rows(plane, h, ax.out, gy, ay.taps, ay.up, ay.down, ay.p0, scale, y + p * ay.out * ax.out, ay.out);
        }
    });
}

} // namespace

//----------------------------------------------------------------------------
// Entry point (the kernel object's upfirdn2d; argument order and meaning as in docs/kernels.md).

std::tuple<at::Tensor, int> upfirdn2d(
    at::Tensor x, at::Tensor f, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
    int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip, double gain)
{
    const bool handled = x.device().is_cpu() && x.dim() == 4 && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)
                         && f.device().is_cpu() && f.is_floating_point() && (f.dim() == 1 || f.dim() == 2) && f.numel() > 0
                         && upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1;
    std::vector<double> gx, gy;
    if (!handled || !factor_filter(f, flip, gx, gy))
        return std::make_tuple(at::Tensor(), -1);
    const Axis ax = make_axis(x.size(3), i64(gx.size()), upx, downx, padx0, padx1);
    const Axis ay = make_axis(x.size(2), i64(gy.size()), upy, downy, pady0, pady1);

    x = x.contiguous();
    auto y = at::empty({x.size(0), x.size(1), ay.out, ax.out}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cpu", [&] {
        const std::vector<scalar_t> tx(gx.begin(), gx.end()), ty(gy.begin(), gy.end());
        run_planes<scalar_t>(x.size(0) * x.size(1), x.data_ptr<scalar_t>(), ax, ay, tx.data(), ty.data(), scalar_t(gain),
                             y.data_ptr<scalar_t>());
    });
    return std::make_tuple(y, 0);
}
