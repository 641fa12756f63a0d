// filtered_lrelu: the fused tile kernel and the stand-alone activation kernel of the generic path
// (tile phases in fundus_kernels.h; one __syncthreads() between phases).

#include "fundus_ops.h"

static const int kThreads = 256;
static const int kMaxGridY = 65535;

template <class T>
__global__ void filtered_lrelu_kernel(fk::FlreluParams p, const T* x, const float* fu, const float* fd, const T* b,
                                      const uint8_t* si, uint8_t* so, T* y)
{
    extern __shared__ float smem[];
    int tid = threadIdx.x, nthr = blockDim.x;
    for (fk::i64 nc = blockIdx.y; nc < (fk::i64)p.N * p.C; nc += gridDim.y) {
        fk::FlreluTile t = fk::flrelu_tile(p, blockIdx.x, nc, smem);
        fk::flrelu_phase_load<T, float>(p, t, x, fu, fd, b, tid, nthr);
        __syncthreads();
        if (p.sep_u) {
            fk::flrelu_phase_up_x(p, t, tid, nthr);
            __syncthreads();
            fk::flrelu_phase_up_y(p, t, si, tid, nthr);
        } else {
            fk::flrelu_phase_up(p, t, si, tid, nthr);
        }
        __syncthreads();
        if (p.mode == fk::SIGNS_WRITE)
            fk::flrelu_phase_signs(p, t, so, nullptr, tid, nthr);
        if (p.sep_d) {
            fk::flrelu_phase_down_y(p, t, tid, nthr);
            __syncthreads();
            fk::flrelu_phase_down_x<T, float>(p, t, y, tid, nthr);
        } else {
            fk::flrelu_phase_down<T, float>(p, t, y, tid, nthr);
        }
        __syncthreads(); // The next channel reuses the shared memory.
    }
}

bool fk_plan_filtered_lrelu(fk::FlreluParams& p)
{
    int device = 0, limit = 48 * 1024;
    if (cudaGetDevice(&device) == cudaSuccess)
        cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlock, device);
    return fk::flrelu_plan(p, limit);
}

cudaError_t fk_launch_filtered_lrelu(const fk::FlreluParams& p, int dtype, const void* x, const float* fu,
                                     const float* fd, const void* b, const uint8_t* si, uint8_t* so, void* y,
                                     cudaStream_t stream)
{
    fk::i64 nc = (fk::i64)p.N * p.C;
    dim3 grid(p.tilesX * p.tilesY, (unsigned)(nc < kMaxGridY ? nc : kMaxGridY));
    if (dtype == FK_FLOAT32)
        filtered_lrelu_kernel<float><<<grid, kThreads, p.smem_bytes, stream>>>(
            p, (const float*)x, fu, fd, (const float*)b, si, so, (float*)y);
    else
        filtered_lrelu_kernel<__half><<<grid, kThreads, p.smem_bytes, stream>>>(
            p, (const __half*)x, fu, fd, (const __half*)b, si, so, (__half*)y);
    return cudaGetLastError();
}

template <class T, class A>
__global__ void filtered_lrelu_act_kernel(fk::FlreluActParams p, T* x, const uint8_t* si, uint8_t* so)
{
    fk::i64 total = (fk::i64)p.N * p.C * p.H * ((p.W + 3) / 4);
    for (fk::i64 i = (fk::i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (fk::i64)gridDim.x * blockDim.x)
        fk::flrelu_act_byte<T, A>(p, x, si, so, i);
}

cudaError_t fk_launch_filtered_lrelu_act(const fk::FlreluActParams& p, int dtype, void* x, const uint8_t* si,
                                         uint8_t* so, cudaStream_t stream)
{
    fk::i64 total = (fk::i64)p.N * p.C * p.H * ((p.W + 3) / 4);
    fk::i64 blocks = (total + kThreads - 1) / kThreads;
    int grid = (int)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
    if (dtype == FK_FLOAT32)
        filtered_lrelu_act_kernel<float, float><<<grid, kThreads, 0, stream>>>(p, (float*)x, si, so);
    else if (dtype == FK_FLOAT16)
        filtered_lrelu_act_kernel<__half, float><<<grid, kThreads, 0, stream>>>(p, (__half*)x, si, so);
    else
        filtered_lrelu_act_kernel<double, double><<<grid, kThreads, 0, stream>>>(p, (double*)x, si, so);
    return cudaGetLastError();
}
