// CPU emulation of the CUDA kernels, for tests on machines without a GPU (tests/ops/test_selfcheck_emulated.py).
//
// It runs the kernel bodies of fundus_kernels.h unchanged: grid-stride loops become plain loops, and each
// tile phase of filtered_lrelu runs for every simulated thread of the block before the next phase starts
// (that is what __syncthreads() guarantees), so the index maths, tiling, shared-memory sizing and sign
// ownership are exercised exactly as on the GPU. Not part of the plugin build; compiled by the tests with
// `g++ -shared -fPIC`. Parameters travel as flat int64 / double arrays (layouts documented per function).

#include <cstdlib>
#include <vector>
#include "fundus_kernels.h"

int fk_emu_failed_line = 0;

using fk::i64;

template <class T>
static int run_upfirdn2d(const i64* ip, const double* dp, const void* x, const float* f, void* y)
{
    // ip: N C inH inW outH outW xs[4] ys[4] fh fw upx upy downx downy padx0 pady0 flip cl_order; dp: gain
    fk::Upfirdn2dParams p;
    p.N = (int)ip[0]; p.C = (int)ip[1]; p.inH = (int)ip[2]; p.inW = (int)ip[3]; p.outH = (int)ip[4]; p.outW = (int)ip[5];
    for (int d = 0; d < 4; d++) { p.xs[d] = ip[6 + d]; p.ys[d] = ip[10 + d]; }
    p.fh = (int)ip[14]; p.fw = (int)ip[15]; p.upx = (int)ip[16]; p.upy = (int)ip[17];
    p.downx = (int)ip[18]; p.downy = (int)ip[19]; p.padx0 = (int)ip[20]; p.pady0 = (int)ip[21];
    p.flip = (int)ip[22]; p.cl_order = (int)ip[23]; p.gain = dp[0];
    i64 total = (i64)p.N * p.C * p.outH * p.outW;
    for (i64 i = 0; i < total; i++)
        fk::upfirdn2d_output<T, T>(p, (const T*)x, f, (T*)y, i);
    return fk_emu_failed_line;
}

template <class T>
static int run_bias_act(const i64* ip, const double* dp, const void* x, const void* b, const void* xref,
                        const void* yref, const void* dy, void* y)
{
    // ip: numel b_step b_size grad act; dp: alpha gain clamp
    fk::BiasActParams p;
    p.numel = ip[0]; p.b_step = ip[1]; p.b_size = ip[2]; p.grad = (int)ip[3]; p.act = (int)ip[4];
    p.has_b = b != nullptr; p.has_xref = xref != nullptr; p.has_yref = yref != nullptr; p.has_dy = dy != nullptr;
    p.alpha = dp[0]; p.gain = dp[1]; p.clamp = dp[2];
    for (i64 i = 0; i < p.numel; i++)
        fk::bias_act_element<T, T>(p, (const T*)x, (const T*)b, (const T*)xref, (const T*)yref, (const T*)dy, (T*)y, i);
    return fk_emu_failed_line;
}

template <class T>
static int run_flrelu_act(const i64* ip, const double* dp, void* x, const uint8_t* si, uint8_t* so)
{
    // ip: N C H W xs[4] mode sx sy sH sWb; dp: gain slope clamp
    fk::FlreluActParams p;
    p.N = (int)ip[0]; p.C = (int)ip[1]; p.H = (int)ip[2]; p.W = (int)ip[3];
    for (int d = 0; d < 4; d++) p.xs[d] = ip[4 + d];
    p.mode = (int)ip[8]; p.sx = (int)ip[9]; p.sy = (int)ip[10]; p.sH = (int)ip[11]; p.sWb = (int)ip[12];
    p.gain = dp[0]; p.slope = dp[1]; p.clamp = dp[2];
    i64 total = (i64)p.N * p.C * p.H * ((p.W + 3) / 4);
    for (i64 i = 0; i < total; i++)
        fk::flrelu_act_byte<T, T>(p, (T*)x, si, so, i);
    return fk_emu_failed_line;
}

template <class T>
static int run_flrelu(const i64* ip, const double* dp, const void* x, const float* fu, const float* fd, const void* b,
                      const uint8_t* si, uint8_t* so, void* y, int* write_count, i64* plan_out)
{
    // ip: N C inH inW outH outW xs[4] ys[4] b_stride fuh fuw fdh fdw up down px0 py0 aH aW flip mode sx sy sH sWb
    //     smem_limit threads sep_u sep_d; dp: gain slope clamp fu_gain. plan_out: tOH tOW tilesX tilesY smem_bytes.
    fk::FlreluParams p;
    p.N = (int)ip[0]; p.C = (int)ip[1]; p.inH = (int)ip[2]; p.inW = (int)ip[3]; p.outH = (int)ip[4]; p.outW = (int)ip[5];
    for (int d = 0; d < 4; d++) { p.xs[d] = ip[6 + d]; p.ys[d] = ip[10 + d]; }
    p.b_stride = ip[14]; p.fuh = (int)ip[15]; p.fuw = (int)ip[16]; p.fdh = (int)ip[17]; p.fdw = (int)ip[18];
    p.up = (int)ip[19]; p.down = (int)ip[20]; p.px0 = (int)ip[21]; p.py0 = (int)ip[22]; p.aH = (int)ip[23]; p.aW = (int)ip[24];
    p.flip = (int)ip[25]; p.mode = (int)ip[26]; p.sx = (int)ip[27]; p.sy = (int)ip[28]; p.sH = (int)ip[29]; p.sWb = (int)ip[30];
    i64 smem_limit = ip[31];
    int nthr = (int)ip[32];
    p.sep_u = (int)ip[33]; p.sep_d = (int)ip[34];
    p.gain = (float)dp[0]; p.slope = (float)dp[1]; p.clamp = (float)dp[2]; p.fu_gain = (float)dp[3];
    if (!fk::flrelu_plan(p, smem_limit))
        return -1;
    plan_out[0] = p.tOH; plan_out[1] = p.tOW; plan_out[2] = p.tilesX; plan_out[3] = p.tilesY; plan_out[4] = p.smem_bytes;
    std::vector<float> smem((size_t)(p.smem_bytes / 4 + 1), -12345.f); // Garbage, as on a GPU.
    for (int tile = 0; tile < p.tilesX * p.tilesY; tile++) {
        for (i64 nc = 0; nc < (i64)p.N * p.C; nc++) {
            fk::FlreluTile t = fk::flrelu_tile(p, tile, nc, smem.data());
            for (int tid = 0; tid < nthr; tid++)
                fk::flrelu_phase_load<T, float>(p, t, (const T*)x, fu, fd, (const T*)b, tid, nthr);
            if (p.sep_u) {
                for (int tid = 0; tid < nthr; tid++)
                    fk::flrelu_phase_up_x(p, t, tid, nthr);
                for (int tid = 0; tid < nthr; tid++)
                    fk::flrelu_phase_up_y(p, t, si, tid, nthr);
            } else {
                for (int tid = 0; tid < nthr; tid++)
                    fk::flrelu_phase_up(p, t, si, tid, nthr);
            }
            for (int tid = 0; tid < nthr; tid++) {
                if (p.mode == fk::SIGNS_WRITE)
                    fk::flrelu_phase_signs(p, t, so, write_count, tid, nthr);
                if (p.sep_d)
                    fk::flrelu_phase_down_y(p, t, tid, nthr);
                else
                    fk::flrelu_phase_down<T, float>(p, t, (T*)y, tid, nthr);
            }
            if (p.sep_d)
                for (int tid = 0; tid < nthr; tid++)
                    fk::flrelu_phase_down_x<T, float>(p, t, (T*)y, tid, nthr);
        }
    }
    return fk_emu_failed_line;
}

extern "C" {

// dtype: 0 = float32, 2 = float64 (half needs CUDA intrinsics and is covered by the cuda lane).
int emu_upfirdn2d(int dtype, const i64* ip, const double* dp, const void* x, const float* f, void* y)
{
    fk_emu_failed_line = 0;
    return dtype == 2 ? run_upfirdn2d<double>(ip, dp, x, f, y) : run_upfirdn2d<float>(ip, dp, x, f, y);
}

int emu_bias_act(int dtype, const i64* ip, const double* dp, const void* x, const void* b, const void* xref,
                 const void* yref, const void* dy, void* y)
{
    fk_emu_failed_line = 0;
    return dtype == 2 ? run_bias_act<double>(ip, dp, x, b, xref, yref, dy, y)
                      : run_bias_act<float>(ip, dp, x, b, xref, yref, dy, y);
}

int emu_filtered_lrelu_act(int dtype, const i64* ip, const double* dp, void* x, const uint8_t* si, uint8_t* so)
{
    fk_emu_failed_line = 0;
    return dtype == 2 ? run_flrelu_act<double>(ip, dp, x, si, so) : run_flrelu_act<float>(ip, dp, x, si, so);
}

int emu_filtered_lrelu(int dtype, const i64* ip, const double* dp, const void* x, const float* fu, const float* fd,
                       const void* b, const uint8_t* si, uint8_t* so, void* y, int* write_count, i64* plan_out)
{
    fk_emu_failed_line = 0;
    return dtype == 2 ? run_flrelu<double>(ip, dp, x, fu, fd, b, si, so, y, write_count, plan_out)
                      : run_flrelu<float>(ip, dp, x, fu, fd, b, si, so, y, write_count, plan_out);
}

} // extern "C"
