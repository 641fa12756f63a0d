// Kernel bodies shared by the CUDA plugin (*.cu) and the CPU emulation used by the tests
// (fundus_kernels_emu.cpp). Everything here is plain C++ plus three macros, so the same index maths,
// tiling and sign packing run on a GPU and, one simulated thread at a time, on a CPU.
//
// Conventions (docs/kernels.md): tensors are addressed through element strides [n, c, h, w], so any
// layout (contiguous, channels-last, sliced) works; filters are float32, contiguous [fh, fw];
// arithmetic is done in the accumulator type A (float for half/float, double for double).

#pragma once
#include <cmath>
#include <cstdint>
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

#if defined(__CUDACC__)
#define FK_HD __host__ __device__ __forceinline__
#define FK_SYNC() __syncthreads()
#define FK_CHECK(cond) ((void)0)
#define FK_COUNT_WRITE(counter, index) ((void)0)
#else
#define FK_HD inline
#define FK_SYNC() ((void)0)
// Emulation only: record the first failed bounds check and count sign-byte writes.
extern int fk_emu_failed_line;
#define FK_CHECK(cond) do { if (!(cond) && !fk_emu_failed_line) fk_emu_failed_line = __LINE__; } while (0)
#define FK_COUNT_WRITE(counter, index) do { if (counter) (counter)[index] += 1; } while (0)
#endif

namespace fk {

typedef long long i64;

FK_HD int floor_div(int a, int b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); } // b > 0
FK_HD int ceil_div(int a, int b)  { return -floor_div(-a, b); }
FK_HD int pos_mod(int a, int b)   { int r = a % b; return (r < 0) ? r + b : r; }
FK_HD int imin(int a, int b)      { return (a < b) ? a : b; }
FK_HD int imax(int a, int b)      { return (a > b) ? a : b; }

// Value conversion between storage and accumulator types. torch builds CUDA code with
// __CUDA_NO_HALF_CONVERSIONS__, so half goes through the explicit intrinsics.
template <class To, class From> FK_HD To cvt(From v) { return (To)v; }
#if defined(__CUDACC__)
template <> FK_HD float cvt<float, __half>(__half v) { return __half2float(v); }
template <> FK_HD __half cvt<__half, float>(float v) { return __float2half_rn(v); }
#endif

//----------------------------------------------------------------------------
// upfirdn2d: one thread per output sample.
//
// Output o (per axis) reads the zero-stuffed, padded input z at o*down + k for taps k in [0, taps):
// z[j] = x[(j - pad0) / up] when (j - pad0) is a non-negative multiple of up, else 0. A true
// convolution uses tap f[taps - 1 - k]; flip = correlation uses f[k]. Only taps that land on real
// samples are visited (stride up), so the cost does not grow with the zero stuffing.

struct Upfirdn2dParams {
    int N, C, inH, inW, outH, outW;
    i64 xs[4];              // x strides [n, c, h, w], elements
    i64 ys[4];              // y strides
    int fh, fw;             // filter [fh, fw], contiguous
    int upx, upy, downx, downy, padx0, pady0;
    int flip;               // 1: correlation
    double gain;            // double, so fp64 results match the reference exactly
    int cl_order;           // 1: thread index runs over (n, h, w, c), matching a channels-last y
};

template <class T, class A>
FK_HD void upfirdn2d_output(const Upfirdn2dParams& p, const T* x, const float* f, T* y, i64 idx)
{
    int n, c, oy, ox;
    if (p.cl_order) {
        c = (int)(idx % p.C); idx /= p.C;
        ox = (int)(idx % p.outW); idx /= p.outW;
        oy = (int)(idx % p.outH); n = (int)(idx / p.outH);
    } else {
        ox = (int)(idx % p.outW); idx /= p.outW;
        oy = (int)(idx % p.outH); idx /= p.outH;
        c = (int)(idx % p.C); n = (int)(idx / p.C);
    }
    const T* xc = x + n * p.xs[0] + c * p.xs[1];
    int zy = oy * p.downy - p.pady0; // Stuffed-input index of tap 0, before dividing by up.
    int zx = ox * p.downx - p.padx0;
    A acc = 0;
    for (int ky = pos_mod(-zy, p.upy); ky < p.fh; ky += p.upy) {
        int iy = (zy + ky) / p.upy; // Exact: zy + ky is a multiple of upy.
        if (iy < 0 || iy >= p.inH)
            continue;
        const float* frow = f + (p.flip ? ky : p.fh - 1 - ky) * p.fw;
        for (int kx = pos_mod(-zx, p.upx); kx < p.fw; kx += p.upx) {
            int ix = (zx + kx) / p.upx;
            if (ix < 0 || ix >= p.inW)
                continue;
            A tap = (A)frow[p.flip ? kx : p.fw - 1 - kx];
            acc += cvt<A>(xc[iy * p.xs[2] + ix * p.xs[3]]) * tap;
        }
    }
    y[n * p.ys[0] + c * p.ys[1] + oy * p.ys[2] + ox * p.ys[3]] = cvt<T>(acc * (A)p.gain);
}

//----------------------------------------------------------------------------
// bias_act: one thread per element. All tensors share x's dense layout, so element i of each is at
// offset i; the bias index is (i / stride_of_dim) % size_of_dim.
//
// grad 0: y = clamp(act(x + b) * gain). grad 1: y = x * act'(ref) * gain. grad 2: y = x * act''(ref) *
// gain * dy. ref is a = yref / gain for output-referenced activations and s = xref (the biased input)
// for swish. In grad modes with clamp >= 0, y = 0 wherever |yref| >= clamp.

enum { ACT_LINEAR = 1, ACT_RELU, ACT_LRELU, ACT_TANH, ACT_SIGMOID, ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_SWISH };

struct BiasActParams {
    i64 numel;
    i64 b_step, b_size;     // stride and size of x along dim
    int has_b, has_xref, has_yref, has_dy;
    int grad, act;
    double alpha, gain, clamp; // clamp < 0: none
};

template <class A> FK_HD A act_exp(A v)   { return exp(v); }
template <class A> FK_HD A act_expm1(A v) { return expm1(v); }
template <class A> FK_HD A act_log1p(A v) { return log1p(v); }
template <class A> FK_HD A act_tanh(A v)  { return tanh(v); }

template <class A>
FK_HD A sigmoid_of(A v)
{
    // Written so that neither branch overflows: exp of a non-positive number only.
    if (v >= 0)
        return (A)1 / ((A)1 + act_exp(-v));
    A e = act_exp(v);
    return e / ((A)1 + e);
}

template <class A>
FK_HD A activation(int act, A v, A alpha)
{
    const A selu_scale = (A)1.0507009873554805, selu_alpha = (A)1.6732632423543772;
    switch (act) {
    case ACT_RELU:     return (v > 0) ? v : (A)0;
    case ACT_LRELU:    return (v > 0) ? v : v * alpha;
    case ACT_TANH:     return act_tanh(v);
    case ACT_SIGMOID:  return sigmoid_of(v);
    case ACT_ELU:      return (v > 0) ? v : act_expm1(v);
    case ACT_SELU:     return (v > 0) ? selu_scale * v : selu_scale * selu_alpha * act_expm1(v);
    case ACT_SOFTPLUS: return (v > (A)20) ? v : act_log1p(act_exp(v)); // torch's threshold of 20
    case ACT_SWISH:    return v * sigmoid_of(v);
    default:           return v;
    }
}

template <class A>
FK_HD A activation_deriv(int act, int order, A a, A s, A alpha)
{
    const A one = 1, selu_scale = (A)1.0507009873554805, selu_sa = (A)(1.0507009873554805 * 1.6732632423543772);
    if (order == 1) {
        switch (act) {
        case ACT_RELU:     return (a > 0) ? one : (A)0;
        case ACT_LRELU:    return (a > 0) ? one : alpha;
        case ACT_TANH:     return one - a * a;
        case ACT_SIGMOID:  return a * (one - a);
        case ACT_ELU:      return (a > 0) ? one : a + one;
        case ACT_SELU:     return (a > 0) ? selu_scale : a + selu_sa;
        case ACT_SOFTPLUS: return -act_expm1(-a);
        case ACT_SWISH:    { A g = sigmoid_of(s); return g * (one + s * (one - g)); }
        default:           return one;
        }
    }
    switch (act) {
    case ACT_TANH:     return (A)-2 * a * (one - a * a);
    case ACT_SIGMOID:  return a * (one - a) * (one - (A)2 * a);
    case ACT_ELU:      return (a > 0) ? (A)0 : a + one;
    case ACT_SELU:     return (a > 0) ? (A)0 : a + selu_sa;
    case ACT_SOFTPLUS: { A e = act_exp(-a); return (one - e) * e; }
    case ACT_SWISH:    { A g = sigmoid_of(s); return g * (one - g) * ((A)2 + s * (one - (A)2 * g)); }
    default:           return (A)0;
    }
}

template <class T, class A>
FK_HD void bias_act_element(const BiasActParams& p, const T* x, const T* b, const T* xref, const T* yref,
                            const T* dy, T* y, i64 i)
{
    A v = cvt<A>(x[i]);
    A gain = (A)p.gain;
    if (p.grad == 0) {
        if (p.has_b)
            v += cvt<A>(b[(i / p.b_step) % p.b_size]);
        v = activation<A>(p.act, v, (A)p.alpha) * gain;
        if (p.clamp >= 0)
            v = (v > (A)p.clamp) ? (A)p.clamp : (v < -(A)p.clamp) ? -(A)p.clamp : v;
        y[i] = cvt<T>(v);
        return;
    }
    A yr = p.has_yref ? cvt<A>(yref[i]) : (A)0;
    A a = (p.has_yref && p.gain != 0) ? yr / gain : (A)0;
    A s = p.has_xref ? cvt<A>(xref[i]) : (A)0;
    v = v * (activation_deriv<A>(p.act, p.grad, a, s, (A)p.alpha) * gain);
    if (p.grad == 2)
        v = v * (p.has_dy ? cvt<A>(dy[i]) : (A)1);
    if (p.clamp >= 0 && !(yr < (A)p.clamp && yr > -(A)p.clamp))
        v = 0;
    y[i] = cvt<T>(v);
}

//----------------------------------------------------------------------------
// filtered_lrelu activation and sign codes (docs/kernels.md, "Sign tensor"): 2 bits per element,
// element w of a row in bits 2*(w % 4) and 2*(w % 4) + 1 of byte w / 4. Code 0: t >= 0; 1: t < 0;
// 2 / 3: clamped at +clamp / -clamp (gradient 0). Read mode multiplies by gain and by 1, slope, 0, 0
// for codes 0..3; positions outside the sign tensor read code 2.

enum { SIGNS_NONE = 0, SIGNS_WRITE = 1, SIGNS_READ = 2 };

template <class A>
FK_HD A lrelu_write(A t, A gain, A slope, A clamp, int* code)
{
    int s = 0;
    A v = t;
    if (t < 0) { s = 1; v = t * slope; }
    v *= gain;
    if (clamp >= 0 && (v > clamp || v < -clamp)) { s = (v > 0) ? 2 : 3; v = (v > 0) ? clamp : -clamp; }
    *code = s;
    return v;
}

template <class A>
FK_HD A lrelu_read(A t, A gain, A slope, int code)
{
    if (code & 2) return (A)0;
    A v = t * gain;
    return (code & 1) ? v * slope : v;
}

template <class A>
FK_HD A lrelu_plain(A t, A gain, A slope, A clamp)
{
    int code;
    return lrelu_write(t, gain, slope, clamp, &code);
}

FK_HD int read_code(const uint8_t* si, i64 nc, int sH, int sWb, int row, int col)
{
    if (row < 0 || row >= sH || col < 0 || col >= 4 * sWb)
        return 2;
    return (si[(nc * sH + row) * sWb + col / 4] >> (2 * (col % 4))) & 3;
}

// filtered_lrelu_act_: in place on x [N, C, H, W]; one thread per sign byte (4 consecutive w).
struct FlreluActParams {
    int N, C, H, W;
    i64 xs[4];
    int mode;               // SIGNS_NONE / SIGNS_WRITE / SIGNS_READ
    int sx, sy;             // Sign coordinates of x[.., 0, 0] (read mode)
    int sH, sWb;            // Sign tensor [N, C, sH, sWb] bytes, contiguous
    double gain, slope, clamp;
};

template <class T, class A>
FK_HD void flrelu_act_byte(const FlreluActParams& p, T* x, const uint8_t* si, uint8_t* so, i64 idx)
{
    int wb = (int)(idx % ((p.W + 3) / 4)); idx /= (p.W + 3) / 4;
    int h = (int)(idx % p.H); idx /= p.H;
    int c = (int)(idx % p.C); int n = (int)(idx / p.C);
    T* row = x + n * p.xs[0] + c * p.xs[1] + h * p.xs[2];
    i64 nc = (i64)n * p.C + c;
    unsigned byte = 0;
    for (int j = 0; j < 4; j++) {
        int w = wb * 4 + j;
        if (w >= p.W)
            break;
        A v = cvt<A>(row[w * p.xs[3]]);
        if (p.mode == SIGNS_WRITE) {
            int code;
            v = lrelu_write<A>(v, (A)p.gain, (A)p.slope, (A)p.clamp, &code);
            byte |= (unsigned)code << (2 * j);
        } else if (p.mode == SIGNS_READ) {
            int code = read_code(si, nc, p.sH, p.sWb, h + p.sy, w + p.sx);
            v = lrelu_read<A>(v, (A)p.gain, (A)p.slope, code);
        } else {
            v = lrelu_plain<A>(v, (A)p.gain, (A)p.slope, (A)p.clamp);
        }
        row[w * p.xs[3]] = cvt<T>(v);
    }
    if (p.mode == SIGNS_WRITE)
        so[(nc * p.sH + h) * p.sWb + wb] = (uint8_t)byte;
}

//----------------------------------------------------------------------------
// filtered_lrelu, fused: one block per (output tile, channel), in shared memory.
//
// Per axis: a[m] = sum_k z[m + k] * fu'[k] (z = bias-added, zero-stuffed, padded x; fu' the filter in
// correlation order, scaled by up^2), m in [0, aLen), aLen = in*up + pad0 + pad1 - fu_taps + 1; then
// a <- lrelu/clamp(a * gain) with sign codes; then y[o] = sum_k a[o*down + k] * fd'[k].
// A tile of tOH x tOW outputs needs a in [o0*down, o0*down + tAH) with tAH = tOH*down + fdh - 1, which
// needs x rows from ceil((a0 - pad0) / up) on, tXH of them.
//
// A 1-D (separable) filter runs as two passes through an extra buffer: fu along x (hbuf, one row per
// input row) then along y; fd along y (vbuf, one row per output row) then along x. A 2-D filter runs
// as one 2-D pass. Both passes visit only taps that land on real (not zero-stuffed) samples.
//
// Sign ownership (write mode): tiles overlap in a, so each a element is written by exactly one block:
// the tile owns a rows [a0, a0 + tOH*down) (the last tile row: up to aH) and sign bytes from a0x / 4 up to
// (a0x + tOW*down) / 4 (the last tile column: up to the padded row end); tOW*down is a multiple of 4.

struct FlreluParams {
    int N, C, inH, inW, outH, outW;
    i64 xs[4], ys[4];
    i64 b_stride;           // b [C]
    int fuh, fuw, fdh, fdw; // taps per axis (a 1-D filter: both equal to its length)
    int sep_u, sep_d;       // 1: the filter is 1-D (separable), stored as fuw (fdw) taps
    int up, down, px0, py0;
    int aH, aW;             // size of the activation grid
    float gain, slope, clamp, fu_gain;
    int flip;
    int mode;               // SIGNS_*
    int sx, sy, sH, sWb;    // sign tensor [N, C, sH, sWb] bytes, contiguous; (sx, sy) = sign coords of a[0, 0]
    // Tiling, filled in by flrelu_plan().
    int tOH, tOW, tilesX, tilesY, tAH, tAW, tXH, tXW;
    i64 smem_bytes;
};

FK_HD int flrelu_fu_len(const FlreluParams& p) { return p.sep_u ? p.fuw : p.fuh * p.fuw; }
FK_HD int flrelu_fd_len(const FlreluParams& p) { return p.sep_d ? p.fdw : p.fdh * p.fdw; }

// Choose the tile size: the largest of 32x32, 16x16, 8x8, 4x4 (outputs) whose shared memory fits.
// Returns false if none fits (the caller then reports "no fast path").
inline bool flrelu_plan(FlreluParams& p, i64 smem_limit)
{
    for (int t = 32; t >= 4; t /= 2) {
        p.tOH = p.tOW = t;
        if ((p.tOW * p.down) % 4 != 0)
            continue;
        p.tAH = p.tOH * p.down + p.fdh - 1;
        p.tAW = p.tOW * p.down + p.fdw - 1;
        p.tXH = (p.tAH + p.fuh - 1 + p.up - 1) / p.up + 1;
        p.tXW = (p.tAW + p.fuw - 1 + p.up - 1) / p.up + 1;
        i64 floats = (i64)flrelu_fu_len(p) + flrelu_fd_len(p) + (i64)p.tXH * p.tXW + (i64)p.tAH * p.tAW;
        floats += (p.sep_u ? (i64)p.tXH * p.tAW : 0) + (p.sep_d ? (i64)p.tOH * p.tAW : 0);
        i64 bytes = floats * 4 + ((p.mode == SIGNS_WRITE) ? (i64)p.tAH * p.tAW : 0);
        bytes = (bytes + 15) / 16 * 16;
        if (bytes <= smem_limit) {
            p.smem_bytes = bytes;
            p.tilesX = (p.outW + p.tOW - 1) / p.tOW;
            p.tilesY = (p.outH + p.tOH - 1) / p.tOH;
            return true;
        }
    }
    return false;
}

struct FlreluTile {
    int n, c, oy0, ox0, ay0, ax0, xr0, xc0;
    int last_row, last_col;
    float *fu, *fd, *xt, *at, *hbuf, *vbuf;
    uint8_t* codes;
};

FK_HD FlreluTile flrelu_tile(const FlreluParams& p, int tile, i64 nc, float* smem)
{
    FlreluTile t;
    t.n = (int)(nc / p.C); t.c = (int)(nc % p.C);
    int ty = tile / p.tilesX, tx = tile % p.tilesX;
    t.last_row = (ty == p.tilesY - 1); t.last_col = (tx == p.tilesX - 1);
    t.oy0 = ty * p.tOH; t.ox0 = tx * p.tOW;
    t.ay0 = t.oy0 * p.down; t.ax0 = t.ox0 * p.down;
    t.xr0 = ceil_div(t.ay0 - p.py0, p.up);
    t.xc0 = ceil_div(t.ax0 - p.px0, p.up);
    t.fu = smem;
    t.fd = t.fu + flrelu_fu_len(p);
    t.xt = t.fd + flrelu_fd_len(p);
    t.at = t.xt + p.tXH * p.tXW;
    t.hbuf = t.at + p.tAH * p.tAW;
    t.vbuf = t.hbuf + (p.sep_u ? p.tXH * p.tAW : 0);
    t.codes = (uint8_t*)(t.vbuf + (p.sep_d ? p.tOH * p.tAW : 0));
    return t;
}

// Phase 1: filters in correlation order (a 2-D fu scaled by fu_gain; a 1-D fu gets it in its second
// pass) and the bias-added input tile.
template <class T, class A>
FK_HD void flrelu_phase_load(const FlreluParams& p, const FlreluTile& t, const T* x, const float* fu,
                             const float* fd, const T* b, int tid, int nthr)
{
    int nu = flrelu_fu_len(p), nd = flrelu_fd_len(p);
    float ug = p.sep_u ? 1.f : p.fu_gain;
    for (int i = tid; i < nu; i += nthr)
        t.fu[i] = fu[p.flip ? i : nu - 1 - i] * ug; // Reversing the flat index flips both axes.
    for (int i = tid; i < nd; i += nthr)
        t.fd[i] = fd[p.flip ? i : nd - 1 - i];
    A bias = b ? cvt<A>(b[t.c * p.b_stride]) : (A)0;
    const T* xc = x + t.n * p.xs[0] + t.c * p.xs[1];
    for (int i = tid; i < p.tXH * p.tXW; i += nthr) {
        int r = t.xr0 + i / p.tXW, q = t.xc0 + i % p.tXW;
        A v = 0;
        if (r >= 0 && r < p.inH && q >= 0 && q < p.inW)
            v = cvt<A>(xc[r * p.xs[2] + q * p.xs[3]]) + bias;
        t.xt[i] = (float)v;
    }
}

// Activation of one element of the a tile (value already filtered), with its sign code.
FK_HD void flrelu_store_act(const FlreluParams& p, const FlreluTile& t, const uint8_t* si, int i, int my, int mx,
                            float acc)
{
    if (p.mode == SIGNS_WRITE) {
        int code;
        acc = lrelu_write<float>(acc, p.gain, p.slope, p.clamp, &code);
        t.codes[i] = (uint8_t)code;
    } else if (p.mode == SIGNS_READ) {
        i64 nc = (i64)t.n * p.C + t.c;
        int code = read_code(si, nc, p.sH, p.sWb, my + p.sy, mx + p.sx);
        acc = lrelu_read<float>(acc, p.gain, p.slope, code);
    } else {
        acc = lrelu_plain<float>(acc, p.gain, p.slope, p.clamp);
    }
    t.at[i] = acc;
}

FK_HD bool flrelu_outside(const FlreluParams& p, const FlreluTile& t, int i, int my, int mx)
{
    if (my < p.aH && mx < p.aW)
        return false;
    t.at[i] = 0.f;
    if (p.mode == SIGNS_WRITE)
        t.codes[i] = 0;
    return true;
}

// Phase 2 (2-D fu): upsample + filter into the a tile, then the activation.
FK_HD void flrelu_phase_up(const FlreluParams& p, const FlreluTile& t, const uint8_t* si, int tid, int nthr)
{
    for (int i = tid; i < p.tAH * p.tAW; i += nthr) {
        int my = t.ay0 + i / p.tAW, mx = t.ax0 + i % p.tAW;
        if (flrelu_outside(p, t, i, my, mx))
            continue;
        int zy = my - p.py0, zx = mx - p.px0;
        float acc = 0.f;
        for (int ky = pos_mod(-zy, p.up); ky < p.fuh; ky += p.up) {
            int r = (zy + ky) / p.up - t.xr0;
            FK_CHECK(r >= 0 && r < p.tXH);
            for (int kx = pos_mod(-zx, p.up); kx < p.fuw; kx += p.up) {
                int q = (zx + kx) / p.up - t.xc0;
                FK_CHECK(q >= 0 && q < p.tXW);
                acc += t.xt[r * p.tXW + q] * t.fu[ky * p.fuw + kx];
            }
        }
        flrelu_store_act(p, t, si, i, my, mx, acc);
    }
}

// Phase 2a (1-D fu): upsample + filter along x, every input row of the tile.
FK_HD void flrelu_phase_up_x(const FlreluParams& p, const FlreluTile& t, int tid, int nthr)
{
    for (int i = tid; i < p.tXH * p.tAW; i += nthr) {
        int r = i / p.tAW, mx = t.ax0 + i % p.tAW;
        int zx = mx - p.px0;
        float acc = 0.f;
        for (int kx = pos_mod(-zx, p.up); kx < p.fuw; kx += p.up) {
            int q = (zx + kx) / p.up - t.xc0;
            FK_CHECK(q >= 0 && q < p.tXW);
            acc += t.xt[r * p.tXW + q] * t.fu[kx];
        }
        t.hbuf[i] = acc;
    }
}

// Phase 2b (1-D fu): upsample + filter along y, then the activation.
FK_HD void flrelu_phase_up_y(const FlreluParams& p, const FlreluTile& t, const uint8_t* si, int tid, int nthr)
{
    for (int i = tid; i < p.tAH * p.tAW; i += nthr) {
        int lx = i % p.tAW, my = t.ay0 + i / p.tAW, mx = t.ax0 + lx;
        if (flrelu_outside(p, t, i, my, mx))
            continue;
        int zy = my - p.py0;
        float acc = 0.f;
        for (int ky = pos_mod(-zy, p.up); ky < p.fuh; ky += p.up) {
            int r = (zy + ky) / p.up - t.xr0;
            FK_CHECK(r >= 0 && r < p.tXH);
            acc += t.hbuf[r * p.tAW + lx] * t.fu[ky];
        }
        flrelu_store_act(p, t, si, i, my, mx, acc * p.fu_gain);
    }
}

// Phase 3 (write mode): the sign bytes this tile owns.
FK_HD void flrelu_phase_signs(const FlreluParams& p, const FlreluTile& t, uint8_t* so, int* write_count,
                              int tid, int nthr)
{
    int rows = t.last_row ? p.aH - t.ay0 : p.tOH * p.down;
    int b0 = t.ax0 / 4;
    int b1 = t.last_col ? p.sWb : (t.ax0 + p.tOW * p.down) / 4;
    int nb = b1 - b0;
    i64 nc = (i64)t.n * p.C + t.c;
    for (int i = tid; i < rows * nb; i += nthr) {
        int ly = i / nb, bx = b0 + i % nb;
        unsigned byte = 0;
        for (int j = 0; j < 4; j++) {
            int mx = bx * 4 + j, lx = mx - t.ax0;
            if (mx < p.aW && lx < p.tAW)
                byte |= (unsigned)t.codes[ly * p.tAW + lx] << (2 * j);
        }
        FK_CHECK(ly < p.tAH);
        i64 o = (nc * p.sH + t.ay0 + ly) * p.sWb + bx;
        so[o] = (uint8_t)byte;
        FK_COUNT_WRITE(write_count, o);
    }
}

// Phase 4 (2-D fd): filter + downsample the a tile into the output.
template <class T, class A>
FK_HD void flrelu_phase_down(const FlreluParams& p, const FlreluTile& t, T* y, int tid, int nthr)
{
    T* yc = y + t.n * p.ys[0] + t.c * p.ys[1];
    for (int i = tid; i < p.tOH * p.tOW; i += nthr) {
        int oy = t.oy0 + i / p.tOW, ox = t.ox0 + i % p.tOW;
        if (oy >= p.outH || ox >= p.outW)
            continue;
        const float* a0 = t.at + (i / p.tOW) * p.down * p.tAW + (i % p.tOW) * p.down;
        float acc = 0.f;
        for (int ky = 0; ky < p.fdh; ky++)
            for (int kx = 0; kx < p.fdw; kx++)
                acc += a0[ky * p.tAW + kx] * t.fd[ky * p.fdw + kx];
        yc[oy * p.ys[2] + ox * p.ys[3]] = cvt<T>((A)acc);
    }
}

// Phase 4a (1-D fd): filter + downsample along y, every column of the a tile.
FK_HD void flrelu_phase_down_y(const FlreluParams& p, const FlreluTile& t, int tid, int nthr)
{
    for (int i = tid; i < p.tOH * p.tAW; i += nthr) {
        int ly = (i / p.tAW) * p.down, lx = i % p.tAW;
        FK_CHECK(ly + p.fdh <= p.tAH);
        float acc = 0.f;
        for (int ky = 0; ky < p.fdh; ky++)
            acc += t.at[(ly + ky) * p.tAW + lx] * t.fd[ky];
        t.vbuf[i] = acc;
    }
}

// Phase 4b (1-D fd): filter + downsample along x into the output.
template <class T, class A>
FK_HD void flrelu_phase_down_x(const FlreluParams& p, const FlreluTile& t, T* y, int tid, int nthr)
{
    T* yc = y + t.n * p.ys[0] + t.c * p.ys[1];
    for (int i = tid; i < p.tOH * p.tOW; i += nthr) {
        int oy = t.oy0 + i / p.tOW, ox = t.ox0 + i % p.tOW;
        if (oy >= p.outH || ox >= p.outW)
            continue;
        const float* v0 = t.vbuf + (i / p.tOW) * p.tAW + (i % p.tOW) * p.down;
        float acc = 0.f;
        for (int kx = 0; kx < p.fdw; kx++)
            acc += v0[kx] * t.fd[kx];
        yc[oy * p.ys[2] + ox * p.ys[3]] = cvt<T>((A)acc);
    }
}

} // namespace fk
