// bias_act: one thread per element, forward and both derivative modes (maths in fundus_kernels.h).

#include "fundus_ops.h"

static const int kThreads = 256;

template <class T, class A>
__global__ void bias_act_kernel(fk::BiasActParams p, const T* x, const T* b, const T* xref, const T* yref,
                                const T* dy, T* y)
{
    for (fk::i64 i = (fk::i64)blockIdx.x * blockDim.x + threadIdx.x; i < p.numel; i += (fk::i64)gridDim.x * blockDim.x)
        fk::bias_act_element<T, A>(p, x, b, xref, yref, dy, y, i);
}

template <class T, class A>
static void launch(const fk::BiasActParams& p, const void* x, const void* b, const void* xref, const void* yref,
                   const void* dy, void* y, cudaStream_t stream)
{
    fk::i64 blocks = (p.numel + kThreads - 1) / kThreads;
    int grid = (int)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
    bias_act_kernel<T, A><<<grid, kThreads, 0, stream>>>(p, (const T*)x, (const T*)b, (const T*)xref,
                                                        (const T*)yref, (const T*)dy, (T*)y);
}

cudaError_t fk_launch_bias_act(const fk::BiasActParams& p, int dtype, const void* x, const void* b, const void* xref,
                               const void* yref, const void* dy, void* y, cudaStream_t stream)
{
    if (dtype == FK_FLOAT32)
        launch<float, float>(p, x, b, xref, yref, dy, y, stream);
    else if (dtype == FK_FLOAT16)
        launch<__half, float>(p, x, b, xref, yref, dy, y, stream);
    else
        launch<double, double>(p, x, b, xref, yref, dy, y, stream);
    return cudaGetLastError();
}
