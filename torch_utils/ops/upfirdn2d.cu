// upfirdn2d: one thread per output sample (index maths in fundus_kernels.h).

#include "fundus_ops.h"

static const int kThreads = 256;

template <class T, class A>
__global__ void upfirdn2d_kernel(fk::Upfirdn2dParams p, const T* x, const float* f, T* y)
{
    fk::i64 total = (fk::i64)p.N * p.C * p.outH * p.outW;
    for (fk::i64 i = (fk::i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (fk::i64)gridDim.x * blockDim.x)
        fk::upfirdn2d_output<T, A>(p, x, f, y, i);
}

static int grid_for(fk::i64 total)
{
    fk::i64 blocks = (total + kThreads - 1) / kThreads;
    return (int)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16); // Grid-stride beyond that.
}

cudaError_t fk_launch_upfirdn2d(const fk::Upfirdn2dParams& p, int dtype, const void* x, const float* f, void* y,
                                cudaStream_t stream)
{
    int grid = grid_for((fk::i64)p.N * p.C * p.outH * p.outW);
    if (dtype == FK_FLOAT32)
        upfirdn2d_kernel<float, float><<<grid, kThreads, 0, stream>>>(p, (const float*)x, f, (float*)y);
    else if (dtype == FK_FLOAT16)
        upfirdn2d_kernel<__half, float><<<grid, kThreads, 0, stream>>>(p, (const __half*)x, f, (__half*)y);
    else
        upfirdn2d_kernel<double, double><<<grid, kThreads, 0, stream>>>(p, (const double*)x, f, (double*)y);
    return cudaGetLastError();
}
