// Python bindings of the CUDA kernels (one extension, four entry points; semantics in docs/kernels.md).
// Every input is validated here with TORCH_CHECK before any launch; the .cu launchers see only raw
// pointers, strides and the parameter structs of fundus_kernels.h.

#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <climits>
#include <tuple>
#include "fundus_ops.h"

//----------------------------------------------------------------------------
// Shared checks.

static int dtype_code(const torch::Tensor& t)
{
    if (t.scalar_type() == torch::kFloat) return FK_FLOAT32;
    if (t.scalar_type() == torch::kHalf) return FK_FLOAT16;
    return FK_FLOAT64;
}

static void check_float_tensor(const torch::Tensor& t, const char* op, const char* name)
{
    TORCH_CHECK(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got device ", t.device());
    auto s = t.scalar_type();
    TORCH_CHECK(s == torch::kFloat || s == torch::kHalf || s == torch::kDouble,
                op, ": ", name, " must be float16, float32 or float64, got ", s);
}

static void check_like(const torch::Tensor& t, const torch::Tensor& x, const char* op, const char* name)
{
    TORCH_CHECK(t.device() == x.device(), op, ": ", name, " is on ", t.device(), " but x is on ", x.device());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": ", name, " has dtype ", t.scalar_type(),
                " but x has ", x.scalar_type());
}

static void check_filter(const torch::Tensor& f, const torch::Tensor& x, const char* op, const char* name, int max_dim)
{
    TORCH_CHECK(f.device() == x.device(), op, ": ", name, " is on ", f.device(), " but x is on ", x.device());
    TORCH_CHECK(f.scalar_type() == torch::kFloat, op, ": ", name, " must be float32, got ", f.scalar_type());
    TORCH_CHECK(f.dim() >= 1 && f.dim() <= max_dim, op, ": ", name, " must have 1..", max_dim,
                " dimensions, got ", f.dim());
    TORCH_CHECK(f.numel() > 0 && f.numel() <= INT_MAX, op, ": ", name, " must be non-empty, got ", f.numel(), " taps");
}

static void check_sizes_fit_int(const torch::Tensor& x, const char* op)
{
    for (int d = 0; d < x.dim(); d++)
        TORCH_CHECK(x.size(d) <= INT_MAX / 8, op, ": dimension ", d, " of x is too large (", x.size(d), ")");
}

static void check_launch(cudaError_t err, const char* op)
{
    TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

static bool is_channels_last(const torch::Tensor& t)
{
    return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

static void copy_strides(fk::i64* dst, const torch::Tensor& t)
{
    for (int d = 0; d < 4; d++)
        dst[d] = t.stride(d);
}

//----------------------------------------------------------------------------
// upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain) -> y

static torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int upx, int upy, int downx, int downy,
                               int padx0, int padx1, int pady0, int pady1, bool flip, double gain)
{
    const char* op = "upfirdn2d";
    check_float_tensor(x, op, "x");
    TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [N, C, H, W], got ", x.dim(), " dimensions");
    TORCH_CHECK(x.numel() > 0, op, ": x must be non-empty, got shape ", x.sizes());
    check_sizes_fit_int(x, op);
    check_filter(f, x, op, "f", 2);
    TORCH_CHECK(f.dim() == 2, op, ": f must be 2-D [fh, fw] (the Python side splits separable filters), got ",
                f.dim(), " dimensions");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, op, ": up and down must be >= 1, got up ",
                upx, "x", upy, ", down ", downx, "x", downy);
    f = f.contiguous();
    fk::Upfirdn2dParams p;
    p.N = (int)x.size(0); p.C = (int)x.size(1); p.inH = (int)x.size(2); p.inW = (int)x.size(3);
    p.fh = (int)f.size(0); p.fw = (int)f.size(1);
    p.upx = upx; p.upy = upy; p.downx = downx; p.downy = downy; p.padx0 = padx0; p.pady0 = pady0;
    p.flip = flip ? 1 : 0;
    p.gain = gain;
    fk::i64 outW = ((fk::i64)p.inW * upx + padx0 + padx1 - p.fw + downx) / downx;
    fk::i64 outH = ((fk::i64)p.inH * upy + pady0 + pady1 - p.fh + downy) / downy;
    TORCH_CHECK(outW >= 1 && outH >= 1, op, ": the padding leaves an empty output (", outH, " x ", outW, ")");
    TORCH_CHECK(outW <= INT_MAX / 8 && outH <= INT_MAX / 8, op, ": output too large (", outH, " x ", outW, ")");
    p.outW = (int)outW; p.outH = (int)outH;

    c10::cuda::CUDAGuard guard(x.device());
    auto y = torch::empty({p.N, p.C, p.outH, p.outW}, x.options().memory_format(x.suggest_memory_format()));
    copy_strides(p.xs, x);
    copy_strides(p.ys, y);
    p.cl_order = is_channels_last(y) ? 1 : 0;
    check_launch(fk_launch_upfirdn2d(p, dtype_code(x), x.data_ptr(), f.data_ptr<float>(), y.data_ptr(),
                                     c10::cuda::getCurrentCUDAStream().stream()), op);
    return y;
}

//----------------------------------------------------------------------------
// bias_act(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp) -> y

static torch::Tensor like_x(const torch::Tensor& t, const torch::Tensor& x, const char* op, const char* name)
{
    // An optional per-element input: empty, or x's shape; brought into x's (dense) layout.
    if (t.numel() == 0)
        return t;
    check_like(t, x, op, name);
    TORCH_CHECK(t.sizes() == x.sizes(), op, ": ", name, " has shape ", t.sizes(), " but x has ", x.sizes());
    if (t.strides() == x.strides())
        return t;
    auto u = torch::empty_like(x);
    u.copy_(t);
    return u;
}

static torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref,
                              torch::Tensor dy, int grad, int dim, int act, double alpha, double gain, double clamp)
{
    const char* op = "bias_act";
    check_float_tensor(x, op, "x");
    TORCH_CHECK(grad >= 0 && grad <= 2, op, ": grad must be 0, 1 or 2, got ", grad);
    TORCH_CHECK(act >= fk::ACT_LINEAR && act <= fk::ACT_SWISH, op, ": unknown activation index ", act);
    TORCH_CHECK(x.dim() >= 1 && dim >= 0 && dim < x.dim(), op, ": dim ", dim, " is not a dimension of x (shape ",
                x.sizes(), ")");
    if (!x.is_non_overlapping_and_dense())
        x = x.contiguous(); // Every input then shares this dense layout (element i at offset i).
    if (b.numel() > 0) {
        check_like(b, x, op, "b");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), op, ": b must be 1-D with x.shape[", dim, "] = ",
                    x.size(dim), " elements, got shape ", b.sizes());
        TORCH_CHECK(grad == 0, op, ": b must be empty in derivative modes (grad = ", grad, ")");
        b = b.contiguous();
    }
    xref = like_x(xref, x, op, "xref");
    yref = like_x(yref, x, op, "yref");
    dy = like_x(dy, x, op, "dy");
    if (grad > 0) {
        TORCH_CHECK(act != fk::ACT_SWISH || xref.numel() > 0, op, ": swish needs xref in grad mode ", grad);
        TORCH_CHECK(act == fk::ACT_LINEAR || act == fk::ACT_SWISH || yref.numel() > 0, op,
                    ": this activation needs yref in grad mode ", grad);
        TORCH_CHECK(clamp < 0 || yref.numel() > 0, op, ": clamp >= 0 needs yref in grad mode ", grad);
    }
    fk::BiasActParams p;
    p.numel = x.numel();
    p.b_step = x.stride(dim) > 0 ? x.stride(dim) : 1;
    p.b_size = x.size(dim) > 0 ? x.size(dim) : 1;
    p.has_b = b.numel() > 0; p.has_xref = xref.numel() > 0; p.has_yref = yref.numel() > 0; p.has_dy = dy.numel() > 0;
    p.grad = grad; p.act = act;
    p.alpha = alpha; p.gain = gain; p.clamp = clamp;

    c10::cuda::CUDAGuard guard(x.device());
    auto y = torch::empty_like(x);
    if (p.numel == 0)
        return y;
    check_launch(fk_launch_bias_act(p, dtype_code(x), x.data_ptr(), p.has_b ? b.data_ptr() : nullptr,
                                    p.has_xref ? xref.data_ptr() : nullptr, p.has_yref ? yref.data_ptr() : nullptr,
                                    p.has_dy ? dy.data_ptr() : nullptr, y.data_ptr(),
                                    c10::cuda::getCurrentCUDAStream().stream()), op);
    return y;
}

//----------------------------------------------------------------------------
// Sign tensors: uint8 [N, C, H, ceil(W / 16) * 4], 2 bits per element (fundus_kernels.h).

static fk::i64 sign_bytes_per_row(fk::i64 width)
{
    return (width + 15) / 16 * 4;
}

static void check_signs_in(const torch::Tensor& si, const torch::Tensor& x, const char* op)
{
    TORCH_CHECK(si.device() == x.device(), op, ": si is on ", si.device(), " but x is on ", x.device());
    TORCH_CHECK(si.scalar_type() == torch::kUInt8, op, ": si must be uint8, got ", si.scalar_type());
    TORCH_CHECK(si.dim() == 4 && si.size(0) == x.size(0) && si.size(1) == x.size(1), op,
                ": si must be [N, C, H, W/4] with N, C of x, got ", si.sizes(), " for x ", x.sizes());
    TORCH_CHECK(si.is_contiguous(), op, ": si must be contiguous");
}

//----------------------------------------------------------------------------
// filtered_lrelu_act_(x, si, sx, sy, gain, slope, clamp, write_signs) -> so

static torch::Tensor filtered_lrelu_act(torch::Tensor x, torch::Tensor si, int sx, int sy, double gain, double slope,
                                        double clamp, bool write_signs)
{
    const char* op = "filtered_lrelu_act_";
    check_float_tensor(x, op, "x");
    TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [N, C, H, W], got ", x.dim(), " dimensions");
    check_sizes_fit_int(x, op);
    bool read = si.numel() > 0;
    TORCH_CHECK(!(read && write_signs), op, ": cannot both read si and write signs");
    fk::FlreluActParams p;
    p.N = (int)x.size(0); p.C = (int)x.size(1); p.H = (int)x.size(2); p.W = (int)x.size(3);
    copy_strides(p.xs, x);
    p.mode = write_signs ? fk::SIGNS_WRITE : read ? fk::SIGNS_READ : fk::SIGNS_NONE;
    p.sx = sx; p.sy = sy;
    p.gain = gain; p.slope = slope; p.clamp = clamp;

    c10::cuda::CUDAGuard guard(x.device());
    torch::Tensor so = torch::empty({0}, x.options().dtype(torch::kUInt8));
    if (write_signs) {
        TORCH_CHECK(sx == 0 && sy == 0, op, ": sign offsets must be 0 when writing signs, got ", sx, ", ", sy);
        so = torch::zeros({p.N, p.C, p.H, sign_bytes_per_row(p.W)}, x.options().dtype(torch::kUInt8));
        p.sH = p.H; p.sWb = (int)so.size(3);
    } else if (read) {
        check_signs_in(si, x, op);
        p.sH = (int)si.size(2); p.sWb = (int)si.size(3);
    } else {
        p.sH = p.sWb = 0;
    }
    if (x.numel() == 0)
        return so;
    check_launch(fk_launch_filtered_lrelu_act(p, dtype_code(x), x.data_ptr(), read ? si.data_ptr<uint8_t>() : nullptr,
                                              write_signs ? so.data_ptr<uint8_t>() : nullptr,
                                              c10::cuda::getCurrentCUDAStream().stream()), op);
    return so;
}

//----------------------------------------------------------------------------
// filtered_lrelu(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip_filter,
//                write_signs) -> (y, so, return_code); return_code -1: no fast path, use the generic one.

static std::tuple<torch::Tensor, torch::Tensor, int> filtered_lrelu(
    torch::Tensor x, torch::Tensor fu, torch::Tensor fd, torch::Tensor b, torch::Tensor si, int up, int down,
    int px0, int px1, int py0, int py1, int sx, int sy, double gain, double slope, double clamp, bool flip_filter,
    bool write_signs)
{
    const char* op = "filtered_lrelu";
    check_float_tensor(x, op, "x");
    TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [N, C, H, W], got ", x.dim(), " dimensions");
    check_sizes_fit_int(x, op);
    check_filter(fu, x, op, "fu", 2);
    check_filter(fd, x, op, "fd", 2);
    if (b.numel() > 0) {
        check_like(b, x, op, "b");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(1), op, ": b must be [C] = [", x.size(1), "] or empty, got ",
                    b.sizes());
    }
    TORCH_CHECK(up >= 1 && down >= 1, op, ": up and down must be >= 1, got ", up, ", ", down);
    bool read = si.numel() > 0;
    TORCH_CHECK(!(read && write_signs), op, ": cannot both read si and write signs");
    if (read)
        check_signs_in(si, x, op);
    TORCH_CHECK(!write_signs || (sx == 0 && sy == 0), op, ": sign offsets must be 0 when writing signs");
    torch::Tensor empty_y = torch::empty({0}, x.options());
    torch::Tensor empty_s = torch::empty({0}, x.options().dtype(torch::kUInt8));
    if (x.scalar_type() == torch::kDouble || x.numel() == 0)
        return std::make_tuple(empty_y, empty_s, -1); // No fast path: the caller runs the generic path.

    // A 1-D filter is separable (the same taps along x and y) and runs as two 1-D passes.
    torch::Tensor fu2 = fu.contiguous(), fd2 = fd.contiguous();
    fk::FlreluParams p;
    p.N = (int)x.size(0); p.C = (int)x.size(1); p.inH = (int)x.size(2); p.inW = (int)x.size(3);
    p.sep_u = (fu2.dim() == 1) ? 1 : 0; p.sep_d = (fd2.dim() == 1) ? 1 : 0;
    p.fuw = (int)fu2.size(-1); p.fuh = (int)fu2.size(0); p.fdw = (int)fd2.size(-1); p.fdh = (int)fd2.size(0);
    p.up = up; p.down = down; p.px0 = px0; p.py0 = py0;
    fk::i64 aW = (fk::i64)p.inW * up + px0 + px1 - p.fuw + 1;
    fk::i64 aH = (fk::i64)p.inH * up + py0 + py1 - p.fuh + 1;
    fk::i64 outW = (aW - p.fdw + down) / down, outH = (aH - p.fdh + down) / down;
    if (aW < 1 || aH < 1 || outW < 1 || outH < 1 || aW > INT_MAX / 8 || aH > INT_MAX / 8)
        return std::make_tuple(empty_y, empty_s, -1);
    p.aW = (int)aW; p.aH = (int)aH; p.outW = (int)outW; p.outH = (int)outH;
    p.b_stride = (b.numel() > 0) ? b.stride(0) : 0;
    p.gain = (float)gain; p.slope = (float)slope; p.clamp = (float)clamp;
    p.fu_gain = (float)(up * up);
    p.flip = flip_filter ? 1 : 0;
    p.mode = write_signs ? fk::SIGNS_WRITE : read ? fk::SIGNS_READ : fk::SIGNS_NONE;
    p.sx = sx; p.sy = sy;
    p.sH = read ? (int)si.size(2) : write_signs ? p.aH : 0;
    p.sWb = read ? (int)si.size(3) : write_signs ? (int)sign_bytes_per_row(p.aW) : 0;

    c10::cuda::CUDAGuard guard(x.device());
    if (!fk_plan_filtered_lrelu(p))
        return std::make_tuple(empty_y, empty_s, -1);
    auto y = torch::empty({p.N, p.C, p.outH, p.outW}, x.options().memory_format(x.suggest_memory_format()));
    copy_strides(p.xs, x);
    copy_strides(p.ys, y);
    torch::Tensor so = empty_s;
    if (write_signs)
        so = torch::zeros({p.N, p.C, p.sH, p.sWb}, x.options().dtype(torch::kUInt8));
    check_launch(fk_launch_filtered_lrelu(p, dtype_code(x), x.data_ptr(), fu2.data_ptr<float>(), fd2.data_ptr<float>(),
                                          (b.numel() > 0) ? b.data_ptr() : nullptr, read ? si.data_ptr<uint8_t>() : nullptr,
                                          write_signs ? so.data_ptr<uint8_t>() : nullptr, y.data_ptr(),
                                          c10::cuda::getCurrentCUDAStream().stream()), op);
    return std::make_tuple(y, so, 0);
}

//----------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR-filter and downsample (docs/kernels.md)");
    m.def("bias_act", &bias_act, "Bias, activation, gain and clamp; forward and derivative modes (docs/kernels.md)");
    m.def("filtered_lrelu", &filtered_lrelu, "Fused upsample, bias, leaky ReLU, clamp and downsample (docs/kernels.md)");
    m.def("filtered_lrelu_act_", &filtered_lrelu_act, "In-place leaky ReLU with sign tensor (docs/kernels.md)");
}
