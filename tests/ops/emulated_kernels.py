# A kernel object that runs our CUDA kernel bodies on the CPU (torch_utils/ops/fundus_kernels_emu.cpp,
# compiled with g++ and called through ctypes), with the plugin's four entry points. It lets CPU tests
# check the kernels' index maths, tiling and sign packing against the reference kernels, and drive the
# self-check with a correct and a deliberately wrong "plugin". float32 and float64 only (half needs CUDA).
#
# The wrappers below re-implement the output allocation of fundus_ops.cpp (sizes, layouts); that glue
# is only exercised on a GPU (tests/ops/test_cuda_kernels.py).

import ctypes
import os
import shutil
import subprocess

import torch

import torch_utils.ops

SOURCE = os.path.join(os.path.dirname(torch_utils.ops.__file__), 'fundus_kernels_emu.cpp')
HEADER = os.path.join(os.path.dirname(torch_utils.ops.__file__), 'fundus_kernels.h')

_SIGNS_NONE, _SIGNS_WRITE, _SIGNS_READ = 0, 1, 2

def compile_library(out_dir):
    """Build the emulation library into out_dir (about 1 s); returns its path, or None without g++."""
    cxx = shutil.which('g++') or shutil.which('c++')
    if cxx is None:
        return None
    path = os.path.join(out_dir, 'libfundus_kernels_emu.so')
    subprocess.run([cxx, '-O1', '-std=c++17', '-shared', '-fPIC', '-Wall', '-Wextra', '-Werror', SOURCE, '-o', path],
                   check=True, capture_output=True, text=True)
    return path

def _i64(values):
    return (ctypes.c_int64 * len(values))(*[int(v) for v in values])

def _f64(values):
    return (ctypes.c_double * len(values))(*[float(v) for v in values])

def _ptr(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None and t.numel() else ctypes.c_void_p(0)

def _dtype_code(x):
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f'the CPU emulation supports float32 and float64, got {x.dtype}')
    return 2 if x.dtype == torch.float64 else 0

def _suggest_memory_format(x):
    # Python stand-in for at::Tensor::suggest_memory_format(), which fundus_ops.cpp uses for outputs.
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format

def _sign_bytes(width):
    return (width + 15) // 16 * 4

#----------------------------------------------------------------------------

class EmulatedKernel:
    """The plugin's entry points, computed by the CUDA kernel bodies on the CPU."""

    def __init__(self, library_path, smem_limit=48 * 1024, threads=256):
        self.lib = ctypes.CDLL(library_path)
        self.smem_limit = smem_limit    # Shrink it to force small tiles (many tile borders).
        self.threads = threads          # Simulated threads per block.
        self.last_plan = None           # (tOH, tOW, tilesX, tilesY, smem_bytes) of the last fused call.
        self.last_write_count = None    # How often each sign byte was written by the last fused call.

    def _check(self, rc, name):
        if rc > 0:
            raise AssertionError(f'{name}: bounds check failed at fundus_kernels.h line {rc}')

    def upfirdn2d(self, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        n, c, h, w = x.shape
        fh, fw = f.shape
        out_w = (w * upx + padx0 + padx1 - fw + downx) // downx
        out_h = (h * upy + pady0 + pady1 - fh + downy) // downy
        y = torch.empty([n, c, out_h, out_w], dtype=x.dtype).contiguous(memory_format=_suggest_memory_format(x))
        cl = int(not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last))
        f = f.contiguous()
        ip = [n, c, h, w, out_h, out_w, *x.stride(), *y.stride(), fh, fw, upx, upy, downx, downy, padx0, pady0, int(flip), cl]
        rc = self.lib.emu_upfirdn2d(_dtype_code(x), _i64(ip), _f64([gain]), _ptr(x), _ptr(f), _ptr(y))
        self._check(rc, 'upfirdn2d')
        return y

    def bias_act(self, x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp):
        dense = x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last))
        x = x if dense else x.contiguous()
        def like_x(t):
            if not t.numel() or t.stride() == x.stride():
                return t
            return torch.empty_like(x).copy_(t)
        xref, yref, dy = like_x(xref), like_x(yref), like_x(dy)
        b = b.contiguous()
        y = torch.empty_like(x)
        ip = [x.numel(), max(x.stride(dim), 1), max(x.shape[dim], 1), grad, act]
        rc = self.lib.emu_bias_act(_dtype_code(x), _i64(ip), _f64([alpha, gain, clamp]), _ptr(x), _ptr(b), _ptr(xref),
                                   _ptr(yref), _ptr(dy), _ptr(y))
        self._check(rc, 'bias_act')
        return y

    def filtered_lrelu_act_(self, x, si, sx, sy, gain, slope, clamp, write_signs):
        n, c, h, w = x.shape
        mode = _SIGNS_WRITE if write_signs else _SIGNS_READ if si.numel() else _SIGNS_NONE
        so = torch.empty([0], dtype=torch.uint8)
        sh, swb = 0, 0
        if mode == _SIGNS_WRITE:
            so = torch.zeros([n, c, h, _sign_bytes(w)], dtype=torch.uint8)
            sh, swb = h, so.shape[3]
        elif mode == _SIGNS_READ:
            sh, swb = si.shape[2], si.shape[3]
        ip = [n, c, h, w, *x.stride(), mode, sx, sy, sh, swb]
        rc = self.lib.emu_filtered_lrelu_act(_dtype_code(x), _i64(ip), _f64([gain, slope, clamp]), _ptr(x),
                                             _ptr(si.contiguous()), _ptr(so))
        self._check(rc, 'filtered_lrelu_act_')
        return so

    def filtered_lrelu(self, x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp,
                       flip_filter, write_signs):
        fu2, fd2 = fu.contiguous(), fd.contiguous() # 1-D = separable: two 1-D passes in the kernel.
        fuh, fuw, fdh, fdw = fu2.shape[0], fu2.shape[-1], fd2.shape[0], fd2.shape[-1]
        n, c, h, w = x.shape
        a_w = w * up + px0 + px1 - fuw + 1
        a_h = h * up + py0 + py1 - fuh + 1
        out_w = (a_w - fdw + down) // down
        out_h = (a_h - fdh + down) // down
        empty_u8 = torch.empty([0], dtype=torch.uint8)
        if x.dtype == torch.float64 or min(a_w, a_h, out_w, out_h) < 1:
            return torch.empty([0], dtype=x.dtype), empty_u8, -1
        mode = _SIGNS_WRITE if write_signs else _SIGNS_READ if si.numel() else _SIGNS_NONE
        y = torch.empty([n, c, out_h, out_w], dtype=x.dtype).contiguous(memory_format=_suggest_memory_format(x))
        so, sh, swb = empty_u8, 0, 0
        if mode == _SIGNS_WRITE:
            so = torch.zeros([n, c, a_h, _sign_bytes(a_w)], dtype=torch.uint8)
            sh, swb = a_h, so.shape[3]
        elif mode == _SIGNS_READ:
            sh, swb = si.shape[2], si.shape[3]
        count = torch.zeros([max(so.numel(), 1)], dtype=torch.int32)
        plan = (ctypes.c_int64 * 5)()
        ip = [n, c, h, w, out_h, out_w, *x.stride(), *y.stride(), b.stride(0) if b.numel() else 0,
              fuh, fuw, fdh, fdw, up, down, px0, py0, a_h, a_w, int(flip_filter), mode, sx, sy, sh, swb,
              self.smem_limit, self.threads, int(fu2.ndim == 1), int(fd2.ndim == 1)]
        rc = self.lib.emu_filtered_lrelu(_dtype_code(x), _i64(ip), _f64([gain, slope, clamp, up * up]), _ptr(x),
                                         _ptr(fu2), _ptr(fd2), _ptr(b), _ptr(si.contiguous()), _ptr(so), _ptr(y),
                                         ctypes.c_void_p(count.data_ptr()), plan)
        if rc == -1:
            return torch.empty([0], dtype=x.dtype), empty_u8, -1
        self._check(rc, 'filtered_lrelu')
        self.last_plan = tuple(plan)
        self.last_write_count = count[:so.numel()].reshape(so.shape) if so.numel() else None
        return y, so, 0

#----------------------------------------------------------------------------
