# StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") and
# the residual discriminator that all three training configurations use, StyleGAN3 included.
#
# The generator grows a learned 4x4 constant to the output resolution in blocks that double the size;
# every convolution is modulated by a style derived from w and demodulated (Sec. 2.2), per-pixel noise adds
# stochastic detail, and ToRGB outputs are summed across resolutions ('skip', Sec. 4.1). The discriminator
# mirrors it with residual downsampling blocks and a minibatch-stddev epilogue.
#
# Class names, constructor arguments, parameter/buffer names and their order match NVIDIA's release, so
# official StyleGAN2-ADA / StyleGAN3 pickles load into these classes; everything else is our own.

import functools

import numpy as np
import torch
from torch import nn

from torch_utils import misc, persistence
from torch_utils.ops import bias_act, conv2d_resample, fma, upfirdn2d
from torch_utils.ops import modulated_conv2d as _modulated_conv2d
from training import networks_common
from training.networks_common import is_int, is_power_of_two, require

#----------------------------------------------------------------------------
# Validation and small numeric helpers.

def _check_resolution(img_resolution, minimum, who):
    ok = is_power_of_two(img_resolution) and img_resolution >= minimum
    require(ok, f'{who}: img_resolution must be a power of two >= {minimum}, got {img_resolution}')

def _check_common(who, img_channels, channel_base, channel_max, num_fp16_res):
    require(is_int(img_channels, 1), f'{who}: img_channels must be >= 1, got {img_channels}')
    require(channel_base >= 1, f'{who}: channel_base must be >= 1, got {channel_base}')
    require(channel_max >= 1, f'{who}: channel_max must be >= 1, got {channel_max}')
    require(is_int(num_fp16_res, 0), f'{who}: num_fp16_res must be an integer >= 0, got {num_fp16_res}')

def _check_architecture(architecture, who):
    require(architecture in ('orig', 'skip', 'resnet'),
             f"{who}: architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")

def _channels(channel_base, channel_max, resolutions, who):
    # Channel count per resolution: channel_base / res, capped at channel_max.
    channels = {res: min(channel_base // res, channel_max) for res in resolutions}
    small = [res for res, ch in channels.items() if ch < 1]
    require(not small, f'{who}: channel_base {channel_base} gives 0 channels at resolution(s) {small}')
    return channels

def _fp16_threshold(img_resolution, num_fp16_res):
    # Blocks at this resolution and above run in fp16 (on CUDA); never below 8x8.
    return max(2 * img_resolution // 2 ** num_fp16_res, 8)

def _default_gain(activation):
    # The gain bias_act applies to this activation by default (sqrt(2) for (leaky) ReLU).
    return bias_act.activation_funcs[activation].def_gain

def _inv_sqrt(n):
    return 1 / np.sqrt(n)

def _scaled_clamp(clamp, gain):
    # A layer's `gain` scales its clamp range along with its output.
    return None if clamp is None else clamp * gain

def _memory_format(channels_last):
    return torch.channels_last if channels_last else torch.contiguous_format

def _block_precision(use_fp16, channels_last, force_fp32, device):
    # fp16 and channels-last are CUDA-only speed-ups; elsewhere a block runs fp32 and contiguous.
    fast = device.type == 'cuda' and not force_fp32
    dtype = torch.float16 if (fast and use_fp16) else torch.float32
    return dtype, _memory_format(fast and channels_last)

def _repr_fields(module, *names):
    # `name=value` pairs for extra_repr().
    return ', '.join(f'{name}={getattr(module, name)}' for name in names)

@misc.profiled_function
def normalize_2nd_moment(x, dim=1, eps=1e-8):
    # Divide by the root mean square along `dim` (pixel norm for vectors).
    return x * x.square().mean(dim=dim, keepdim=True).add(eps).rsqrt()

#----------------------------------------------------------------------------

@misc.profiled_function
def modulated_conv2d(
    x,                          # Activations [N, I, H, W].
    weight,                     # Shared kernel [O, I, kh, kw].
    styles,                     # Per-sample scales of the input channels [N, I].
    noise           = None,     # Added to the output after demodulation: [N, 1, H', W'] or [H', W'].
    up              = 1,        # Upsampling factor applied before the convolution.
    down            = 1,        # Downsampling factor applied after it.
    padding         = 0,        # Padding, measured on the upsampled grid.
    resample_filter = None,     # FIR from upfirdn2d.setup_filter for the up/down steps.
    demodulate      = True,     # Normalise each per-sample filter to unit L2 norm (StyleGAN2 Sec. 2.2).
    flip_weight     = True,     # True = cross-correlation like torch conv2d, False = true convolution.
    fused_modconv   = True,     # One grouped convolution with per-sample kernels (True), or scale the
                                # activations around a shared convolution (False).
):
    """Modulated (and optionally demodulated) convolution of StyleGAN2.

    Returns:
        [N, O, H', W'] activations.
    """
    N = x.shape[0]
    O, I, kh, kw = weight.shape
    misc.assert_shape(weight, [O, I, kh, kw], 'weight')
    misc.assert_shape(x, [N, I, None, None], 'x')
    misc.assert_shape(styles, [N, I], 'styles')

    # Fused without resampling: the shared op (CPU training takes its recomputing autograd Function).
    if fused_modconv and up == 1 and down == 1 and flip_weight:
        px0, px1, py0, py1 = conv2d_resample._padding_with_resampling(resample_filter, 1, 1, padding)
        if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
            y = _modulated_conv2d.modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=[py0, px0],
                                                   prescale='fp16_peak')
            return y if noise is None else y.add_(noise)

    # fp16 products of raw weights and styles can overflow. Demodulation cancels any positive scale,
    # so first bring both to a peak magnitude of about one.
    if demodulate and x.dtype == torch.float16:
        weight = weight * (_inv_sqrt(I * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)

    # Per-sample kernels are needed to fuse, and to compute the demodulation coefficients.
    per_sample = None
    if fused_modconv or demodulate:
        per_sample = weight[None] * styles.reshape(N, 1, I, 1, 1)              # [N, O, I, kh, kw]
    dcoefs = None
    if demodulate:
        dcoefs = (per_sample.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()         # [N, O]

    conv = functools.partial(conv2d_resample.conv2d_resample, f=resample_filter, up=up, down=down,
                             padding=padding, flip_weight=flip_weight)
    if not fused_modconv:
        return _modconv_unfused(x, weight, styles, dcoefs, noise, conv)

    if dcoefs is not None:
        per_sample = per_sample * dcoefs[:, :, None, None, None]
    stacked = x.reshape(1, N * I, *x.shape[2:])                                # [1, N*I, H, W]
    kernels = per_sample.reshape(N * O, I, kh, kw).to(x.dtype)                 # [N*O, I, kh, kw]
    y = conv(x=stacked, w=kernels, groups=N)                                   # [1, N*O, H', W']
    y = y.reshape(N, O, *y.shape[2:])
    if noise is not None:
        y = y.add_(noise)
    return y

def _modconv_unfused(x, weight, styles, dcoefs, noise, conv):
    # Modulation scales the input channels and demodulation the output channels, so both can be applied
    # to the activations around one convolution with the shared kernel: cheaper for large batches.
    N = x.shape[0]
    x = x * styles.to(x.dtype)[:, :, None, None]
    y = conv(x=x, w=weight.to(x.dtype))                                        # [N, O, H', W']
    if dcoefs is not None:
        scale = dcoefs.to(x.dtype).reshape(N, -1, 1, 1)
        return y * scale if noise is None else fma.fma(y, scale, noise.to(x.dtype))
    return y if noise is None else y.add_(noise.to(x.dtype))

#----------------------------------------------------------------------------

def fully_connected(layer, x):
    """Forward pass of an equalised-learning-rate dense layer (shared by both networks' FullyConnectedLayer)."""
    weight = layer.weight.to(x.dtype) * layer.weight_gain                      # [out, in]
    bias = None if layer.bias is None else layer.bias.to(x.dtype) * layer.bias_gain
    if bias is not None and layer.activation == 'linear':
        return torch.addmm(bias[None], x, weight.T)                             # Fused x W^T + b.
    return bias_act.bias_act(x @ weight.T, bias, act=layer.activation)

#----------------------------------------------------------------------------

@persistence.persistent_class
class FullyConnectedLayer(nn.Module):
    """Dense layer with an equalised learning rate (ProGAN Sec. 4.1): unit-scale stored weights,
    multiplied by lr_multiplier / sqrt(in_features) on every call."""

    def __init__(self,
        in_features,                # Width of each input vector.
        out_features,               # Width of each output vector.
        bias            = True,     # Learn an additive bias?
        activation      = 'linear', # Any bias_act nonlinearity: 'linear', 'lrelu', 'relu', ...
        lr_multiplier   = 1,        # Relative learning rate of this layer (0.01 in the mapping MLP).
        bias_init       = 0,        # Initial value of every stored bias entry.
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        initial_bias = torch.full([out_features], float(bias_init), dtype=torch.float32)
        self.bias = nn.Parameter(initial_bias) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        return fully_connected(self, x)

    def extra_repr(self):
        return _repr_fields(self, 'in_features', 'out_features', 'activation')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Conv2dLayer(nn.Module):
    """Plain convolution with equalised learning rate, optional FIR resampling, bias and activation."""

    def __init__(self,
        in_channels,                    # Channels of the incoming features.
        out_channels,                   # Channels produced.
        kernel_size,                    # Side of the square kernel (odd: padding keeps the size).
        bias            = True,         # Learn an additive bias?
        activation      = 'linear',     # Any bias_act nonlinearity.
        up              = 1,            # Upsample by this factor before the convolution.
        down            = 1,            # Downsample by this factor after it.
        resample_filter = (1, 3, 3, 1), # 1-D taps of the separable resampling FIR.
        conv_clamp      = None,         # Clamp outputs to [-conv_clamp, conv_clamp]; None = never.
        channels_last   = False,        # Store the kernel in channels-last layout (fp16 speed-up).
        trainable       = True,         # False = frozen (Freeze-D): kernel and bias become buffers.
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = _inv_sqrt(in_channels * kernel_size ** 2)
        self.act_gain = _default_gain(activation)

        kernel = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        kernel = kernel.to(memory_format=_memory_format(channels_last))
        offset = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(kernel)
            self.bias = None if offset is None else nn.Parameter(offset)
        else:
            # Buffers stay in the state dict (and in pickles) but not in parameters(), so no optimiser
            # touches them.
            self.register_buffer('weight', kernel)
            if offset is None:
                self.bias = None
            else:
                self.register_buffer('bias', offset)

    def forward(self, x, gain=1):
        kernel = (self.weight * self.weight_gain).to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        # Kernel orientation for up > 1 follows NVIDIA's, so pickled weights act the same way.
        x = conv2d_resample.conv2d_resample(x=x, w=kernel, f=self.resample_filter, up=self.up, down=self.down,
                                            padding=self.padding, flip_weight=(self.up == 1))
        return bias_act.bias_act(x, bias, act=self.activation, gain=self.act_gain * gain,
                                 clamp=_scaled_clamp(self.conv_clamp, gain))

    def extra_repr(self):
        return _repr_fields(self, 'in_channels', 'out_channels', 'activation', 'up', 'down')

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(nn.Module):
    """MLP from (z, c) to w. Also serves the discriminator as its label embedding (z_dim = 0,
    num_ws = None)."""

    def __init__(self,
        z_dim,                      # Length of the latent z; 0 = labels only.
        c_dim,                      # Length of the label c; 0 = unconditional.
        w_dim,                      # Length of the output w.
        num_ws,                     # Copies of w to emit; None = return [N, w_dim] as is.
        num_layers      = 8,        # Depth of the MLP.
        embed_features  = None,     # Width of the label embedding; None = w_dim.
        layer_features  = None,     # Width of the hidden layers; None = w_dim.
        activation      = 'lrelu',  # Nonlinearity of every layer.
        lr_multiplier   = 0.01,     # Relative learning rate of the MLP layers.
        w_avg_beta      = 0.998,    # EMA decay of w_avg (truncation centre); None = do not track.
    ):
        super().__init__()
        require(z_dim >= 0 and c_dim >= 0 and z_dim + c_dim > 0,
                 f'MappingNetwork: need z_dim >= 0, c_dim >= 0 and z_dim + c_dim > 0, got {z_dim}, {c_dim}')
        require(w_dim >= 1, f'MappingNetwork: w_dim must be >= 1, got {w_dim}')
        require(num_layers >= 1, f'MappingNetwork: num_layers (mapping depth) must be >= 1, got {num_layers}')
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta

        embed_width = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        hidden = w_dim if layer_features is None else layer_features
        widths = [z_dim + embed_width] + [hidden] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_width)
        for idx in range(num_layers):
            fc = FullyConnectedLayer(widths[idx], widths[idx + 1], activation=activation, lr_multiplier=lr_multiplier)
            self.add_module(f'fc{idx}', fc)
        if self._tracks_w_avg():
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def _tracks_w_avg(self):
        return self.num_ws is not None and self.w_avg_beta is not None

    def forward(self,
        z,                          # [N, z_dim], or None when z_dim == 0.
        c,                          # [N, c_dim]; ignored when c_dim == 0.
        truncation_psi      = 1,    # 1 = no truncation; 0 = every truncated w becomes w_avg.
        truncation_cutoff   = None, # Truncate only the first this-many ws; None = all of them.
        update_emas         = False,# Fold this batch's mean w into w_avg (training).
    ):
        # Normalise z and the embedded label separately, then concatenate them.
        parts = []
        if self.z_dim > 0:
            misc.assert_shape(z, [None, self.z_dim], 'z')
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim > 0:
            misc.assert_shape(c, [parts[0].shape[0] if parts else None, self.c_dim], 'c')
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        h = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            h = getattr(self, f'fc{idx}')(h)

        if update_emas and self._tracks_w_avg():
            self.w_avg.copy_(torch.lerp(h.detach().mean(dim=0), self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            h = h[:, None, :].repeat(1, self.num_ws, 1)                         # [N, num_ws, w_dim]
        if truncation_psi != 1:
            require(self._tracks_w_avg(), 'truncation needs a mapping network that tracks w_avg')
            h = _truncate(h, self.w_avg, truncation_psi, truncation_cutoff)
        return h

    def extra_repr(self):
        return _repr_fields(self, 'z_dim', 'c_dim', 'w_dim', 'num_ws')

def _truncate(ws, w_avg, psi, cutoff):
    # Truncation trick: move the first `cutoff` ws a fraction (1 - psi) of the way towards w_avg.
    cutoff = ws.shape[1] if cutoff is None else cutoff
    pulled = w_avg.lerp(ws[:, :cutoff], psi)
    return torch.cat([pulled, ws[:, cutoff:]], dim=1)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling by 2), noise, bias and activation."""

    def __init__(self,
        in_channels,                    # Channels of the incoming features.
        out_channels,                   # Channels produced.
        w_dim,                          # Length of w.
        resolution,                     # Side of the output feature map.
        kernel_size     = 3,            # Side of the square kernel.
        up              = 1,            # 2 for the first layer of a block, else 1.
        use_noise       = True,         # Add learned-strength per-pixel noise?
        activation      = 'lrelu',      # Any bias_act nonlinearity.
        resample_filter = (1, 3, 3, 1), # 1-D taps of the upsampling FIR.
        conv_clamp      = None,         # Clamp outputs to [-conv_clamp, conv_clamp]; None = never.
        channels_last   = False,        # Store the kernel in channels-last layout (fp16 speed-up).
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.w_dim, self.resolution, self.up = w_dim, resolution, up
        self.use_noise, self.activation, self.conv_clamp = use_noise, activation, conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = _default_gain(activation)

        # Registration order fixes both the seeded random draws (affine, kernel, noise_const) and the
        # state-dict order (weight, noise_strength, bias).
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        kernel = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        self.weight = nn.Parameter(kernel.to(memory_format=_memory_format(channels_last)))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self,
        x,                          # [N, in_channels, resolution / up, resolution / up]
        w,                          # [N, w_dim]
        noise_mode      = 'random', # 'random' = fresh noise, 'const' = noise_const, 'none' = no noise.
        fused_modconv   = True,     # See modulated_conv2d.
        gain            = 1,        # Extra output scale (also scales the clamp).
    ):
        require(noise_mode in ('random', 'const', 'none'),
                 f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        side = self.resolution // self.up
        misc.assert_shape(x, [None, self.in_channels, side, side], 'x')
        styles = self.affine(w)                                                 # [N, in_channels]
        noise = self._noise(x.shape[0], x.device, noise_mode)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain,
                                 clamp=_scaled_clamp(self.conv_clamp, gain))

    def _noise(self, batch_size, device, noise_mode):
        # Scaled per-pixel noise shared by all channels, or None.
        if not self.use_noise or noise_mode == 'none':
            return None
        if noise_mode == 'const':
            return self.noise_const * self.noise_strength
        shape = [batch_size, 1, self.resolution, self.resolution]
        return torch.randn(shape, device=device) * self.noise_strength

    def extra_repr(self):
        return _repr_fields(self, 'in_channels', 'out_channels', 'w_dim', 'resolution', 'up', 'activation')

#----------------------------------------------------------------------------

@persistence.persistent_class
class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self,
        in_channels,            # Channels of the incoming features.
        out_channels,           # Image channels produced.
        w_dim,                  # Length of w.
        kernel_size     = 1,    # Side of the square kernel.
        conv_clamp      = None, # Clamp outputs to [-conv_clamp, conv_clamp]; None = never.
        channels_last   = False,# Store the kernel in channels-last layout (fp16 speed-up).
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.w_dim, self.conv_clamp = w_dim, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        kernel = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        self.weight = nn.Parameter(kernel.to(memory_format=_memory_format(channels_last)))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        # Without demodulation the fan-in scale has to be applied explicitly; it goes into the styles.
        self.weight_gain = _inv_sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused_modconv=True): # x: [N, in_channels, H, W], w: [N, w_dim]
        styles = self.weight_gain * self.affine(w)                              # [N, in_channels]
        y = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(y, self.bias.to(y.dtype), clamp=self.conv_clamp)

    def extra_repr(self):
        return _repr_fields(self, 'in_channels', 'out_channels', 'w_dim')

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisBlock(nn.Module):
    """One resolution of the generator: (const | upsampling conv0) -> conv1 -> ToRGB."""

    def __init__(self,
        in_channels,                            # Channels from the previous block; 0 = first block (4x4).
        out_channels,                           # Channels this block produces.
        w_dim,                                  # Length of w.
        resolution,                             # Side of this block's feature maps.
        img_channels,                           # Channels of the output image.
        is_last,                                # Highest resolution (always has ToRGB).
        architecture            = 'skip',       # 'orig', 'skip' (sum of ToRGBs) or 'resnet'.
        resample_filter         = (1, 3, 3, 1), # 1-D taps of the upsampling FIR.
        conv_clamp              = 256,          # Clamp conv outputs to [-conv_clamp, conv_clamp]; None = never.
        use_fp16                = False,        # Run in half precision (honoured on CUDA only).
        fp16_channels_last      = False,        # With fp16, also use channels-last layout.
        fused_modconv_default   = True,         # fused_modconv when forward() gets None: True, False
                                                # or 'inference_only' (fused only in eval mode).
        **layer_kwargs,                         # Options for both SynthesisLayers.
    ):
        _check_architecture(architecture, 'SynthesisBlock')
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16, self.fused_modconv_default = use_fp16, fused_modconv_default
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))

        # Build in seeded-initialisation order: const, conv0, conv1, torgb, skip.
        first = (in_channels == 0)
        has_torgb = is_last or architecture == 'skip'
        layout = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        layer = functools.partial(SynthesisLayer, w_dim=w_dim, resolution=resolution, **layout, **layer_kwargs)
        if first:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = layer(in_channels, out_channels, up=2, resample_filter=resample_filter)
        self.conv1 = layer(out_channels, out_channels)
        if has_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, **layout)
        if not first and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    channels_last=self.channels_last, resample_filter=resample_filter)
        self.num_conv = 1 if first else 2   # ws consumed by convolutions...
        self.num_torgb = int(has_torgb)     # ...and by ToRGB (shared with the next block's conv0).

    def forward(self,
        x,                          # [N, in_channels, resolution / 2, resolution / 2]; None for the first block.
        img,                        # [N, img_channels, resolution / 2, resolution / 2] or None.
        ws,                         # [N, num_conv + num_torgb, w_dim]
        force_fp32      = False,    # Stay in fp32 even where use_fp16 is set.
        fused_modconv   = None,     # None = fused_modconv_default.
        update_emas     = False,    # Accepted for a uniform call signature; nothing to update.
        **layer_kwargs,             # noise_mode for the SynthesisLayers.
    ):
        _ = update_emas # StyleGAN2 synthesis has no running statistics.
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], 'block ws')
        remaining_ws = iter(ws.unbind(dim=1))
        dtype, memory_format = _block_precision(self.use_fp16, self.channels_last, force_fp32, ws.device)
        fused_modconv = self._resolve_fused(fused_modconv)
        conv_kwargs = dict(fused_modconv=fused_modconv, **layer_kwargs)

        # Features: the learned constant, or the previous block's output.
        if self.in_channels == 0:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
        else:
            side = self.resolution // 2
            misc.assert_shape(x, [None, self.in_channels, side, side], 'block input')
        x = x.to(dtype, memory_format=memory_format)

        # Residual blocks scale both branches by sqrt(1/2) so the sum keeps unit variance.
        residual = self.in_channels != 0 and self.architecture == 'resnet'
        branch_gain = np.sqrt(0.5) if residual else 1
        shortcut = self.skip(x, gain=branch_gain) if residual else None
        if self.in_channels != 0:
            x = self.conv0(x, next(remaining_ws), **conv_kwargs)
        x = self.conv1(x, next(remaining_ws), gain=branch_gain, **conv_kwargs)
        if residual:
            x = shortcut.add_(x)

        # Image: upsample what the coarser blocks produced and add this block's ToRGB (always fp32).
        if img is not None:
            side = self.resolution // 2
            misc.assert_shape(img, [None, self.img_channels, side, side], 'block image')
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.num_torgb:
            rgb = self.torgb(x, next(remaining_ws), fused_modconv=fused_modconv)
            rgb = rgb.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = rgb if img is None else img.add_(rgb)

        assert x.dtype == dtype
        return x, img

    def _resolve_fused(self, fused_modconv):
        # None falls back to the block default; 'inference_only' fuses in eval mode only.
        mode = self.fused_modconv_default if fused_modconv is None else fused_modconv
        return (not self.training) if mode == 'inference_only' else mode

    def extra_repr(self):
        return _repr_fields(self, 'resolution', 'architecture')

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(nn.Module):
    """Blocks b4, b8, ..., b{img_resolution}; consecutive blocks share one w (ToRGB and next conv0)."""

    def __init__(self,
        w_dim,                  # Length of w.
        img_resolution,         # Side of the square output image (a power of two).
        img_channels,           # Channels of the output image.
        channel_base    = 32768,# Channels at resolution r = channel_base / r ...
        channel_max     = 512,  # ... capped at this.
        num_fp16_res    = 4,    # Run the highest this-many resolutions in fp16 (CUDA only).
        **block_kwargs,         # Options for every SynthesisBlock.
    ):
        _check_resolution(img_resolution, 4, 'StyleGAN2 generator')
        _check_common('StyleGAN2 generator', img_channels, channel_base, channel_max, num_fp16_res)
        require(w_dim >= 1, f'StyleGAN2 generator: w_dim must be >= 1, got {w_dim}')
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2, self.num_fp16_res = int(img_resolution).bit_length() - 1, num_fp16_res
        resolutions = [4 * 2 ** i for i in range(self.img_resolution_log2 - 1)]   # 4, 8, ..., img_resolution
        self.block_resolutions = resolutions
        channels = _channels(channel_base, channel_max, resolutions, 'StyleGAN2 generator')
        fp16_from = _fp16_threshold(img_resolution, num_fp16_res)

        self.num_ws = 0
        for res in resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                                   resolution=res, img_channels=img_channels, is_last=(res == img_resolution),
                                   use_fp16=(res >= fp16_from), **block_kwargs)
            self.add_module(f'b{res}', block)
            self.num_ws += block.num_conv + (block.num_torgb if block.is_last else 0)

    def forward(self, ws, **block_kwargs): # ws: [N, num_ws, w_dim]
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        ws = ws.float()
        x = img = None
        start = 0
        for block in self._blocks():
            count = block.num_conv + block.num_torgb
            x, img = block(x, img, ws[:, start:start + count], **block_kwargs)
            start += block.num_conv     # The ToRGB w is also the next block's first conv w.
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'image')
        return img

    def _blocks(self):
        return [getattr(self, f'b{res}') for res in self.block_resolutions]

    def extra_repr(self):
        return _repr_fields(self, 'w_dim', 'num_ws', 'img_resolution', 'img_channels', 'num_fp16_res')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(networks_common.GeneratorBase):
    """The full StyleGAN2 generator: z (and c) -> mapping -> ws -> synthesis -> image."""

    def __init__(self,
        z_dim,                      # Length of the latent z.
        c_dim,                      # Length of the label c; 0 = unconditional.
        w_dim,                      # Length of the intermediate latent w.
        img_resolution,             # Side of the square output image.
        img_channels,               # Channels of the output image.
        mapping_kwargs      = None, # Options for MappingNetwork; None = its defaults.
        **synthesis_kwargs,         # Options for SynthesisNetwork and its blocks.
    ):
        super().__init__()
        require(z_dim >= 1, f'StyleGAN2 generator: z_dim must be >= 1, got {z_dim}')
        self._build(SynthesisNetwork, MappingNetwork, z_dim, c_dim, w_dim, img_resolution, img_channels,
                    mapping_kwargs, synthesis_kwargs)

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: (fromrgb) -> conv0 -> downsampling conv1, plus a shortcut."""

    def __init__(self,
        in_channels,                        # Channels from the previous block; 0 = first block.
        tmp_channels,                       # Channels inside the block.
        out_channels,                       # Channels passed to the next (half-size) block.
        resolution,                         # Side of this block's input.
        img_channels,                       # Channels of the input image.
        first_layer_idx,                    # Global index of this block's first layer (for Freeze-D).
        architecture        = 'resnet',     # 'orig', 'skip' (image fed to every block) or 'resnet'.
        activation          = 'lrelu',      # Any bias_act nonlinearity.
        resample_filter     = (1, 3, 3, 1), # 1-D taps of the downsampling FIR.
        conv_clamp          = None,         # Clamp conv outputs to [-conv_clamp, conv_clamp]; None = never.
        use_fp16            = False,        # Run in half precision (honoured on CUDA only).
        fp16_channels_last  = False,        # With fp16, also use channels-last layout.
        freeze_layers       = 0,            # Freeze-D (Mo et al. 2020): layers with a global index below
                                            # this keep their initial (or loaded) weights.
    ):
        _check_architecture(architecture, 'DiscriminatorBlock')
        require(in_channels in (0, tmp_channels),
                 f'DiscriminatorBlock: in_channels ({in_channels}) must be 0 or tmp_channels ({tmp_channels})')
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture = first_layer_idx, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))

        # Layers are numbered across blocks in creation order; num_layers counts this block's.
        self.num_layers = 0
        def conv(*args, **kwargs):
            trainable = self.first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return Conv2dLayer(*args, trainable=trainable, channels_last=self.channels_last, **kwargs)

        reads_image = in_channels == 0 or architecture == 'skip'
        if reads_image:
            self.fromrgb = conv(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                conv_clamp=conv_clamp)
        self.conv0 = conv(tmp_channels, tmp_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.conv1 = conv(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                          resample_filter=resample_filter, conv_clamp=conv_clamp)
        if architecture == 'resnet':
            self.skip = conv(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                             resample_filter=resample_filter)

    def forward(self, x, img, force_fp32=False): # x: [N, in_channels, r, r] or None; img: [N, img_channels, r, r]
        device = (img if x is None else x).device
        dtype, memory_format = _block_precision(self.use_fp16, self.channels_last, force_fp32, device)
        side = self.resolution
        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, side, side], 'block input')
            x = x.to(dtype, memory_format=memory_format)

        # The first block (and every 'skip' block) reads the image through fromrgb.
        if hasattr(self, 'fromrgb'):
            misc.assert_shape(img, [None, self.img_channels, side, side], 'img')
            img = img.to(dtype, memory_format=memory_format)
            features = self.fromrgb(img)
            x = features if x is None else x + features
            # Only 'skip' passes the (downsampled) image on to the next block.
            if self.architecture == 'skip':
                img = upfirdn2d.downsample2d(img, self.resample_filter)
            else:
                img = None

        # Residual blocks scale both branches by sqrt(1/2) so the sum keeps unit variance.
        residual = self.architecture == 'resnet'
        branch_gain = np.sqrt(0.5) if residual else 1
        shortcut = self.skip(x, gain=branch_gain) if residual else None
        x = self.conv1(self.conv0(x), gain=branch_gain)
        if residual:
            x = shortcut.add_(x)

        assert x.dtype == dtype
        return x, img

    def extra_repr(self):
        return _repr_fields(self, 'resolution', 'architecture')

#----------------------------------------------------------------------------

@persistence.persistent_class
class MinibatchStdLayer(nn.Module):
    """Appends the average standard deviation across small groups of samples as extra feature maps
    (ProGAN Sec. 3), letting the discriminator notice a lack of variety in a batch."""

    def __init__(self, group_size, num_channels=1): # group_size None = the whole batch is one group.
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        G = N if self.group_size is None else min(self.group_size, N)
        F = self.num_channels
        if N % G != 0:
            raise ValueError(f'minibatch-stddev: batch size {N} is not divisible by the group size {G} '
                             f'(mbstd_group_size)')

        # Sample i lands in group slot i // (N / G): groups are strided across the batch.
        groups = x.reshape(G, -1, F, C // F, H, W)                             # [G, n, F, c, H, W]
        deviations = groups - groups.mean(dim=0)
        std = (deviations.square().mean(dim=0) + 1e-8).sqrt()                   # [n, F, c, H, W]
        stat = std.mean(dim=[2, 3, 4])[:, :, None, None]                        # [n, F, 1, 1]
        stat = stat.repeat(G, 1, H, W)                                          # [N, F, H, W]
        return torch.cat([x, stat], dim=1)                                      # [N, C + F, H, W]

    def extra_repr(self):
        return _repr_fields(self, 'group_size', 'num_channels')

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: minibatch stddev, conv, two dense layers and the (projected) logit."""

    def __init__(self,
        in_channels,                    # Channels of the 4x4 features.
        cmap_dim,                       # Length of the embedded label; 0 = unconditional.
        resolution,                     # Side of the input features (4).
        img_channels,                   # Channels of the image (used by 'skip' only).
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        mbstd_group_size    = 4,        # Samples per minibatch-stddev group; None = the whole batch.
        mbstd_num_channels  = 1,        # Stddev feature maps appended; 0 = no minibatch stddev.
        activation          = 'lrelu',  # Any bias_act nonlinearity.
        conv_clamp          = None,     # Clamp conv outputs to [-conv_clamp, conv_clamp]; None = never.
    ):
        _check_architecture(architecture, 'DiscriminatorEpilogue')
        require(mbstd_group_size is None or mbstd_group_size >= 1,
                 f'mbstd_group_size must be >= 1 or None, got {mbstd_group_size}')
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation=activation)
        self.mbstd = None
        if mbstd_num_channels > 0:
            self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x, img, cmap, force_fp32=False): # cmap: [N, cmap_dim] or None
        _ = force_fp32 # The head always runs in fp32.
        side = self.resolution
        misc.assert_shape(x, [None, self.in_channels, side, side], 'epilogue input')
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, side, side], 'img')
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))

        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)                                                        # [N, C, 4, 4]
        x = self.out(self.fc(x.flatten(1)))                                     # [N, cmap_dim or 1]

        # Conditional: project onto the embedded label (Miyato & Koyama 2018), normalised by its length.
        if self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim], 'cmap')
            x = (x * cmap).sum(dim=1, keepdim=True) * _inv_sqrt(self.cmap_dim)
        assert x.dtype == torch.float32
        return x

    def extra_repr(self):
        return _repr_fields(self, 'resolution', 'architecture')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(nn.Module):
    """Residual discriminator: blocks b{img_resolution} ... b8, then the 4x4 epilogue b4."""

    def __init__(self,
        c_dim,                          # Length of the label c; 0 = unconditional.
        img_resolution,                 # Side of the square input image (a power of two >= 8).
        img_channels,                   # Channels of the input image.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Channels at resolution r = channel_base / r ...
        channel_max         = 512,      # ... capped at this.
        num_fp16_res        = 4,        # Run the highest this-many resolutions in fp16 (CUDA only).
        conv_clamp          = 256,      # Clamp conv outputs to [-conv_clamp, conv_clamp]; None = never.
        cmap_dim            = None,     # Length of the label embedding; None = channels at 4x4.
        block_kwargs        = None,     # Options for every DiscriminatorBlock.
        mapping_kwargs      = None,     # Options for the label-embedding MappingNetwork.
        epilogue_kwargs     = None,     # Options for DiscriminatorEpilogue.
    ):
        _check_resolution(img_resolution, 8, 'Discriminator')
        _check_common('Discriminator', img_channels, channel_base, channel_max, num_fp16_res)
        require(c_dim >= 0, f'Discriminator: c_dim must be >= 0, got {c_dim}')
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(img_resolution).bit_length() - 1
        resolutions = [img_resolution >> i for i in range(self.img_resolution_log2 - 2)]  # img_resolution, ..., 8
        self.block_resolutions = resolutions
        channels = _channels(channel_base, channel_max, resolutions + [4], 'Discriminator')
        fp16_from = _fp16_threshold(img_resolution, num_fp16_res)
        if c_dim == 0:
            cmap_dim = 0
        elif cmap_dim is None:
            cmap_dim = channels[4]

        # Build in seeded-initialisation order: blocks from the top resolution down, mapping, epilogue.
        shared = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in resolutions:
            block = DiscriminatorBlock(0 if res == img_resolution else channels[res], channels[res],
                                       channels[res // 2], resolution=res, first_layer_idx=layer_idx,
                                       use_fp16=(res >= fp16_from), **(block_kwargs or {}), **shared)
            self.add_module(f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4,
                                        **(epilogue_kwargs or {}), **shared)

    def forward(self, img, c, update_emas=False, **block_kwargs): # block_kwargs: force_fp32
        """Logits [N, 1] for images [N, img_channels, img_resolution, img_resolution] and labels c."""
        _ = update_emas # The discriminator has no running statistics.
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        x = None
        for block in [getattr(self, f'b{res}') for res in self.block_resolutions]:
            x, img = block(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self):
        return _repr_fields(self, 'c_dim', 'img_resolution', 'img_channels')

#----------------------------------------------------------------------------
