// The CPU plugin's Python module: one entry point per kernel file (docs/kernels.md).

#include <torch/extension.h>
#include <tuple>

// filtered_lrelu_cpu.cpp
std::tuple<torch::Tensor, torch::Tensor, int> filtered_lrelu(
    torch::Tensor x, torch::Tensor fu, torch::Tensor fd, torch::Tensor b, torch::Tensor si,
    int64_t up, int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, int64_t sx, int64_t sy,
    double gain, double slope, double clamp, bool flip_filter, bool write_signs);

// upfirdn2d_cpu.cpp
std::tuple<torch::Tensor, int> upfirdn2d(
    torch::Tensor x, torch::Tensor f, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
    int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip, double gain);

// bias_act_cpu.cpp
std::tuple<torch::Tensor, int> bias_act(
    torch::Tensor x, torch::Tensor b, torch::Tensor yref, int64_t grad, int64_t dim, int64_t act,
    double alpha, double gain, double clamp);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    // The calls release the GIL: other Python threads run meanwhile, as during aten ops.
    m.def("filtered_lrelu", &filtered_lrelu, "filtered_lrelu for separable filters on CPU tensors (docs/kernels.md)",
          py::call_guard<py::gil_scoped_release>());
    m.def("upfirdn2d", &upfirdn2d, "upfirdn2d for separable filters on CPU tensors (docs/kernels.md)",
          py::call_guard<py::gil_scoped_release>());
    m.def("bias_act", &bias_act, "bias_act for linear, relu and lrelu on CPU tensors (docs/kernels.md)",
          py::call_guard<py::gil_scoped_release>());
}
