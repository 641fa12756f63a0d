// Host-side launchers of the CUDA kernels, called by the bindings in fundus_ops.cpp. The .cu files
// include no torch headers (they compile much faster that way): tensors arrive as raw pointers plus
// the parameter structs of fundus_kernels.h, with a dtype code and the stream to launch on.

#pragma once
#include <cuda_runtime_api.h>
#include "fundus_kernels.h"

enum FkDtype { FK_FLOAT32 = 0, FK_FLOAT16 = 1, FK_FLOAT64 = 2 };

// Each returns cudaSuccess or the launch error.
cudaError_t fk_launch_upfirdn2d(const fk::Upfirdn2dParams& p, int dtype, const void* x, const float* f, void* y,
                                cudaStream_t stream);
cudaError_t fk_launch_bias_act(const fk::BiasActParams& p, int dtype, const void* x, const void* b, const void* xref,
                               const void* yref, const void* dy, void* y, cudaStream_t stream);
cudaError_t fk_launch_filtered_lrelu_act(const fk::FlreluActParams& p, int dtype, void* x, const uint8_t* si,
                                         uint8_t* so, cudaStream_t stream);

// Plans the tiling (fills p.tOH ... p.smem_bytes) for the current device. Returns false if no tile fits
// in shared memory; the caller then reports return code -1 (use the generic path).
bool fk_plan_filtered_lrelu(fk::FlreluParams& p);
cudaError_t fk_launch_filtered_lrelu(const fk::FlreluParams& p, int dtype, const void* x, const float* fu,
                                     const float* fd, const void* b, const uint8_t* si, uint8_t* so, void* y,
                                     cudaStream_t stream);
