# StyleGAN3 generator, after Karras et al. 2021, "Alias-Free Generative Adversarial Networks".
#
# Every feature map is read as a band-limited continuous signal stored on a discrete grid. The network
# starts from Fourier features (sinusoids with random frequencies), then applies a stack of modulated
# convolutions. Each pointwise nonlinearity is evaluated at a temporarily raised sampling rate, sandwiched
# between a Kaiser-windowed upsampling filter and a downsampling filter, so that the new frequencies it
# creates are removed before they can alias (paper, Sec. 3).
#
# Two flavours share this file: stylegan3-t (3x3 kernels, separable filters) and stylegan3-r (1x1 kernels,
# radially symmetric down filters, for rotation equivariance). Class names, constructor arguments,
# parameter/buffer names and their order match NVIDIA's release, so official pickles load into these
# classes (torch_utils/persistence.py); everything else here is our own.

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch import nn

import dnnlib
from torch_utils import misc, persistence
from torch_utils.ops import filtered_lrelu
from torch_utils.ops import modulated_conv2d as _modulated_conv2d
from training import networks_common, networks_stylegan2
from training.networks_common import is_int, is_power_of_two, require

#----------------------------------------------------------------------------
# Small helpers shared by the classes below.

def _as_xy(size):
    # Sizes may be given as one int or as [width, height]; store both axes.
    return np.broadcast_to(np.asarray(size), [2])

def _check_noise_mode(noise_mode):
    # StyleGAN3 has no noise inputs, but callers share one call signature with StyleGAN2.
    if noise_mode not in ('random', 'const', 'none'):
        raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")

def _he_gain(in_channels, kernel):
    # 1/sqrt(fan-in): the equalised-learning-rate scale of a k x k convolution.
    return 1 / np.sqrt(in_channels * kernel * kernel)

def _compute_dtype(want_fp16, device):
    # Half precision pays off only on CUDA; the CPU reference path always runs in fp32.
    return torch.float16 if (want_fp16 and device.type == 'cuda') else torch.float32

def _repr_fields(module, *names):
    # `name=value` pairs for extra_repr(): arrays as lists, floats in %g.
    def fmt(value):
        if isinstance(value, np.ndarray):
            return str(value.tolist())
        if isinstance(value, (float, np.floating)):
            return f'{float(value):g}'
        return str(value)
    return ', '.join(f'{name}={fmt(getattr(module, name))}' for name in names)

def normalize_2nd_moment(x, dim=1, eps=1e-8):
    # Divide by the root mean square along `dim` (pixel norm for vectors).
    return x * x.square().mean(dim=dim, keepdim=True).add(eps).rsqrt()

#----------------------------------------------------------------------------

@misc.profiled_function
def modulated_conv2d(
    x,                  # Activations [N, I, H, W].
    w,                  # Shared kernel [O, I, kh, kw].
    s,                  # Per-sample styles [N, I], one scale per input channel.
    demodulate  = True, # Rescale each per-sample filter to unit L2 norm (all layers but ToRGB).
    padding     = 0,    # Zero padding of the convolution: int or [pad_y, pad_x].
    input_gain  = None, # Extra per-input-channel scale: [], [I] or [N, I]; None = no scaling.
):
    """Style-modulated convolution (StyleGAN2 Sec. 2.2) as StyleGAN3 runs it: kernel and styles are
    brought to unit RMS before demodulation (torch_utils/ops/modulated_conv2d.py; CPU training takes its
    recomputing autograd Function).

    Returns:
        [N, O, H', W'] with H' = H + 2 * pad_y - kh + 1 (likewise W').
    """
    N, I = int(x.shape[0]), int(w.shape[1])
    O, _, kh, kw = w.shape
    misc.assert_shape(w, [O, I, kh, kw], 'weight')
    misc.assert_shape(x, [N, I, None, None], 'x')
    misc.assert_shape(s, [N, I], 'styles')
    return _modulated_conv2d.modulated_conv2d(x, w, s, demodulate=demodulate, padding=padding,
                                              input_gain=input_gain, prescale='rms')

#----------------------------------------------------------------------------

@persistence.persistent_class
class FullyConnectedLayer(nn.Module):
    """Dense layer with an equalised learning rate (ProGAN Sec. 4.1): the stored weights have unit
    scale and are multiplied by lr_multiplier / sqrt(in_features) on every call."""

    def __init__(self,
        in_features,                # Width of each input vector.
        out_features,               # Width of each output vector.
        activation      = 'linear', # Any bias_act nonlinearity: 'linear', 'lrelu', 'relu', ...
        bias            = True,     # Learn an additive bias?
        lr_multiplier   = 1,        # Relative learning rate of this layer (0.01 in the mapping MLP).
        weight_init     = 1,        # Standard deviation of the effective weights at initialisation.
        bias_init       = 0,        # Effective bias at initialisation: a scalar or one value per output.
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation

        # Store the parameters divided by their run-time gains, so the effective values start at *_init.
        self.weight = nn.Parameter((weight_init / lr_multiplier) * torch.randn(out_features, in_features))
        initial_bias = torch.as_tensor(bias_init, dtype=torch.float32).expand(out_features)
        self.bias = nn.Parameter(initial_bias / lr_multiplier) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        return networks_stylegan2.fully_connected(self, x)

    def extra_repr(self):
        return _repr_fields(self, 'in_features', 'out_features', 'activation')

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(nn.Module):
    """MLP from (z, c) to the intermediate latent w, broadcast to one copy per synthesis layer."""

    def __init__(self,
        z_dim,                      # Length of the latent z.
        c_dim,                      # Length of the label c; 0 = unconditional.
        w_dim,                      # Length of the intermediate latent w.
        num_ws,                     # Number of copies of w to emit, one per synthesis input.
        num_layers      = 2,        # Depth of the MLP.
        lr_multiplier   = 0.01,     # Relative learning rate of the MLP layers.
        w_avg_beta      = 0.998,    # EMA decay of w_avg, the centre that truncation pulls towards.
    ):
        super().__init__()
        require(z_dim >= 1, f'MappingNetwork: z_dim must be >= 1, got {z_dim}')
        require(c_dim >= 0, f'MappingNetwork: c_dim must be >= 0, got {c_dim}')
        require(w_dim >= 1, f'MappingNetwork: w_dim must be >= 1, got {w_dim}')
        require(num_layers >= 1, f'MappingNetwork: num_layers (mapping depth) must be >= 1, got {num_layers}')
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta

        # A label is embedded to w_dim features and enters the MLP next to z.
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        widths = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx in range(num_layers):
            fc = FullyConnectedLayer(widths[idx], widths[idx + 1], activation='lrelu', lr_multiplier=lr_multiplier)
            self.add_module(f'fc{idx}', fc)
        self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self,
        z,                          # [N, z_dim]
        c,                          # [N, c_dim]; ignored when c_dim == 0.
        truncation_psi      = 1,    # 1 = no truncation; 0 = every truncated w becomes w_avg.
        truncation_cutoff   = None, # Truncate only the first this-many ws; None = all of them.
        update_emas         = False,# Fold this batch's mean w into w_avg (training).
    ):
        misc.assert_shape(z, [None, self.z_dim], 'z')
        h = normalize_2nd_moment(z.float())
        if self.c_dim > 0:
            misc.assert_shape(c, [z.shape[0], self.c_dim], 'c')
            h = torch.cat([h, normalize_2nd_moment(self.embed(c.float()))], dim=1)
        for idx in range(self.num_layers):
            h = getattr(self, f'fc{idx}')(h)
        if update_emas:
            self.w_avg.copy_(torch.lerp(h.detach().mean(dim=0), self.w_avg, self.w_avg_beta))
        ws = h[:, None, :].repeat(1, self.num_ws, 1)                            # [N, num_ws, w_dim]
        return _truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)

    def extra_repr(self):
        return _repr_fields(self, 'z_dim', 'c_dim', 'w_dim', 'num_ws')

def _truncate(ws, w_avg, psi, cutoff):
    # Truncation trick: move the first `cutoff` ws a fraction (1 - psi) of the way towards w_avg.
    if psi == 1:
        return ws
    cutoff = ws.shape[1] if cutoff is None else cutoff
    pulled = w_avg.lerp(ws[:, :cutoff], psi)
    return torch.cat([pulled, ws[:, cutoff:]], dim=1)

#----------------------------------------------------------------------------

def _rotation(cos, sin):
    # Batched 3x3 homogeneous rotation matrices from per-sample cos/sin: [N] -> [N, 3, 3].
    o, i = torch.zeros_like(cos), torch.ones_like(cos)
    return torch.stack([cos, -sin, o, sin, cos, o, o, o, i], dim=1).reshape(-1, 3, 3)

def _translation(dx, dy):
    # Batched 3x3 homogeneous translation matrices: [N] -> [N, 3, 3].
    o, i = torch.zeros_like(dx), torch.ones_like(dx)
    return torch.stack([i, o, dx, o, i, dy, o, o, i], dim=1).reshape(-1, 3, 3)

def _pixel_centres(size, sampling_rate, device):
    # (x, y) of every pixel centre, with the image centred on 0 and sampling_rate samples per unit:
    # x_i = (i + 0.5 - W/2) / sampling_rate. Returns [H, W, 2].
    def axis(n):
        return (torch.arange(n, dtype=torch.float32, device=device) + 0.5 - n / 2) / sampling_rate
    ys, xs = torch.meshgrid(axis(int(size[1])), axis(int(size[0])), indexing='ij')
    return torch.stack([xs, ys], dim=2)

@persistence.persistent_class
class SynthesisInput(nn.Module):
    """Fourier-feature input (paper Sec. 3.1): `channels` sinusoids of random frequency, rotated and
    translated per sample by w, faded out near Nyquist, then mixed by a learned channel matrix."""

    def __init__(self,
        w_dim,          # Length of w.
        channels,       # Number of sinusoids, which is also the number of output channels.
        size,           # Output grid in pixels: int or [width, height].
        sampling_rate,  # Samples per unit length of the output grid.
        bandwidth,      # Largest frequency drawn at initialisation.
    ):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = _as_xy(size)
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth

        # Random directions in 2-D whose radial density falls off quickly, so that most of the energy
        # sits at low frequencies, scaled to lie within the bandwidth. The draw order (freqs, phases,
        # weight, affine) is part of the seeded initialisation.
        freqs = torch.randn([channels, 2])
        radius = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radius * radius.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5

        # affine(w) = (r_c, r_s, t_x, t_y) starts as the identity: weight 0, bias (1, 0, 0, 0).
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer('transform', torch.eye(3, 3))   # Inverse of a user transform of the image.
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w):
        misc.assert_shape(w, [None, self.w_dim], 'w')
        T = self._sample_transform(w)                                           # [N, 3, 3]

        # Express the sinusoids in output coordinates: the linear part acts on the frequencies, the
        # translation becomes a phase offset.
        phases = self.phases + (self.freqs @ T[:, :2, 2:]).squeeze(2)           # [N, C]
        freqs = self.freqs @ T[:, :2, :2]                                       # [N, C, 2]
        amplitudes = self._nyquist_fade(freqs)                                  # [N, C]

        grid = _pixel_centres(self.size, self.sampling_rate, w.device)          # [H, W, 2]
        x = torch.einsum('hwd,ncd->nhwc', grid, freqs)                          # [N, H, W, C]
        x = torch.sin(2 * np.pi * (x + phases[:, None, None, :]))
        x = x * amplitudes[:, None, None, :]

        # Learned mixing of the sinusoids (a 1x1 convolution), then channels first.
        mix = self.weight / np.sqrt(self.channels)
        x = (x @ mix.T).permute(0, 3, 1, 2)                                     # [N, C, H, W]
        misc.assert_shape(x, [w.shape[0], self.channels, int(self.size[1]), int(self.size[0])], 'input features')
        return x

    def _sample_transform(self, w):
        # Per-sample rotation and translation predicted from w. Only the direction of (r_c, r_s) matters,
        # so divide the whole vector by its length; then compose with the user transform.
        params = self.affine(w)                                                 # [N, 4]
        params = params / params[:, :2].norm(dim=1, keepdim=True)
        r_c, r_s, t_x, t_y = params.unbind(dim=1)
        return _rotation(r_c, r_s) @ _translation(-t_x, -t_y) @ self.transform

    def _nyquist_fade(self, freqs):
        # Amplitude 1 up to the bandwidth, falling linearly to 0 at Nyquist, so that a rotation can never
        # push a sinusoid to a frequency the grid cannot represent.
        excess = freqs.norm(dim=2) - self.bandwidth
        return (1 - excess / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

    def extra_repr(self):
        return _repr_fields(self, 'w_dim', 'channels', 'size', 'sampling_rate', 'bandwidth')

#----------------------------------------------------------------------------

def _windowed_jinc(numtaps, cutoff, width, fs):
    # 2-D radially symmetric lowpass: the ideal circular filter (a jinc, J1(2 pi f_c r) / (pi r)) sampled
    # on a centred numtaps x numtaps grid, tapered by a separable Kaiser window, normalised to sum 1.
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(t[:, None], t[None, :])
    with np.errstate(divide='ignore', invalid='ignore'):
        taps = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r)
    taps = np.where(r == 0, cutoff, taps)   # The limit at the centre (reached only for odd numtaps).
    attenuation = scipy.signal.kaiser_atten(numtaps, 2 * width / fs)
    window = np.kaiser(numtaps, scipy.signal.kaiser_beta(attenuation))
    taps = taps * np.outer(window, window)
    return taps / taps.sum()

def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """Kaiser-windowed FIR lowpass used around the nonlinearities.

    Args:
        numtaps: filter length; 1 means "no filter".
        cutoff:  cutoff frequency f_c.
        width:   transition band width (twice the half-width f_h).
        fs:      sampling rate the filter runs at.
        radial:  2-D radially symmetric filter instead of a 1-D separable one.

    Returns:
        None for numtaps == 1, else float32 taps: [numtaps] (separable) or [numtaps, numtaps] (radial).
    """
    if numtaps == 1:
        return None
    if radial:
        taps = _windowed_jinc(numtaps, cutoff, width, fs)
    else:
        taps = scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)
    return torch.tensor(taps, dtype=torch.float32)

def layer_padding(in_size, out_size, conv_kernel, up_factor, down_factor, up_taps, down_taps):
    """filtered_lrelu padding [x_lo, x_hi, y_lo, y_hi] that turns an in_size input into out_size samples."""
    n_in, n_out = _as_xy(in_size), _as_xy(out_size)
    # Samples needed before the final decimation, minus what the (k - 1)-padded convolution followed by
    # upsampling provides, plus the samples each FIR consumes at the borders.
    needed = (n_out - 1) * down_factor + 1
    provided = (n_in + conv_kernel - 1) * up_factor
    total = needed - provided + (up_taps - 1) + (down_taps - 1)
    # Shift the odd sample to the low side by up_factor: the symmetric grid interpretation (Appendix C.3).
    lo = (total + up_factor) // 2
    hi = total - lo
    return [int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1])]

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(nn.Module):
    """One modulated convolution plus filtered leaky ReLU, or the final linear ToRGB layer."""

    def __init__(self,
        w_dim,                          # Length of w.
        is_torgb,                       # The last layer: 1x1, not demodulated, linear, unfiltered.
        is_critically_sampled,          # Cutoff at Nyquist (the last few layers): no radial down filter.
        use_fp16,                       # Run in half precision (honoured on CUDA only).

        # Signal description on both sides of the layer (one schedule entry each).
        in_channels,                    # Channels of the incoming features.
        out_channels,                   # Channels produced.
        in_size,                        # Incoming grid in pixels: int or [width, height].
        out_size,                       # Produced grid in pixels: int or [width, height].
        in_sampling_rate,               # Sampling rate s of the input.
        out_sampling_rate,              # Sampling rate s of the output.
        in_cutoff,                      # Cutoff f_c of the input signal.
        out_cutoff,                     # Cutoff f_c the output is filtered to.
        in_half_width,                  # Transition half-width f_h on the input side.
        out_half_width,                 # Transition half-width f_h on the output side.

        # Options shared by every layer.
        conv_kernel         = 3,        # Kernel size (3 for stylegan3-t, 1 for -r); ToRGB forces 1.
        filter_size         = 6,        # FIR taps per unit of the resampling factor.
        lrelu_upsampling    = 2,        # How much the rate is raised around the nonlinearity.
        use_radial_filters  = False,    # Radially symmetric down filters (stylegan3-r).
        conv_clamp          = 256,      # Clamp outputs to [-conv_clamp, conv_clamp]; None = never.
        magnitude_ema_beta  = 0.999,    # EMA decay of the input's mean square.
    ):
        super().__init__()
        self.w_dim, self.is_torgb = w_dim, is_torgb
        self.is_critically_sampled, self.use_fp16 = is_critically_sampled, use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = _as_xy(in_size), _as_xy(out_size)
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta

        # The leaky ReLU creates frequencies above either band limit; run it at lrelu_upsampling times
        # the higher rate so they are representable until the down filter removes them. ToRGB is linear.
        headroom = 1 if is_torgb else lrelu_upsampling
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * headroom
        self.up_factor = _resampling_factor(self.tmp_sampling_rate, in_sampling_rate, 'up')
        self.down_factor = _resampling_factor(self.tmp_sampling_rate, out_sampling_rate, 'down')

        # Parameters (the affine's random draw precedes the kernel's), then the magnitude statistic.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        k = self.conv_kernel
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))

        # Lowpass filters on both sides of the nonlinearity. One tap means no filter: the buffer is None
        # and therefore absent from the state dict.
        resamples = not is_torgb
        self.up_taps = filter_size * self.up_factor if resamples and self.up_factor > 1 else 1
        self.down_taps = filter_size * self.down_factor if resamples and self.down_factor > 1 else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer('up_filter', design_lowpass_filter(
            self.up_taps, in_cutoff, width=2 * in_half_width, fs=self.tmp_sampling_rate))
        self.register_buffer('down_filter', design_lowpass_filter(
            self.down_taps, out_cutoff, width=2 * out_half_width, fs=self.tmp_sampling_rate, radial=self.down_radial))
        self.padding = layer_padding(self.in_size, self.out_size, k, self.up_factor, self.down_factor,
                                     self.up_taps, self.down_taps)

    def forward(self,
        x,                          # [N, in_channels, in_height, in_width]
        w,                          # [N, w_dim]
        noise_mode      = 'random', # Validated and ignored: StyleGAN3 has no noise inputs.
        force_fp32      = False,    # Stay in fp32 even where use_fp16 is set.
        update_emas     = False,    # Update magnitude_ema from this batch (training).
    ):
        _check_noise_mode(noise_mode)
        misc.assert_shape(x, [None, self.in_channels, int(self.in_size[1]), int(self.in_size[0])], 'x')
        misc.assert_shape(w, [x.shape[0], self.w_dim], 'w')

        # Normalise the input by its running RMS; the gain is folded into the convolution weights.
        if update_emas:
            mean_square = x.detach().float().square().mean()
            self.magnitude_ema.copy_(torch.lerp(mean_square, self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        # ToRGB is not demodulated; it scales its styles by the fan-in gain instead.
        styles = self.affine(w)                                                 # [N, in_channels]
        if self.is_torgb:
            styles = styles * _he_gain(self.in_channels, self.conv_kernel)

        dtype = _compute_dtype(self.use_fp16 and not force_fp32, x.device)
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain)
        x = self._filtered_nonlinearity(x)

        misc.assert_shape(x, [None, self.out_channels, int(self.out_size[1]), int(self.out_size[0])], 'layer output')
        assert x.dtype == dtype
        return x

    def _filtered_nonlinearity(self, x):
        # Bias, upsample, leaky ReLU, clamp and downsample in one fused op; ToRGB stays linear.
        gain, slope = (1, 1) if self.is_torgb else (np.sqrt(2), 0.2)
        return filtered_lrelu.filtered_lrelu(
            x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
            up=self.up_factor, down=self.down_factor, padding=self.padding,
            gain=gain, slope=slope, clamp=self.conv_clamp)

    def extra_repr(self):
        lines = [
            ('w_dim', 'is_torgb'), ('is_critically_sampled', 'use_fp16'),
            ('in_sampling_rate', 'out_sampling_rate'), ('in_cutoff', 'out_cutoff'),
            ('in_half_width', 'out_half_width'), ('in_size', 'out_size'), ('in_channels', 'out_channels'),
        ]
        return ',\n'.join(_repr_fields(self, *names) for names in lines)

def _resampling_factor(high_rate, rate, direction):
    # Integer ratio between the nonlinearity's rate and an input/output rate.
    factor = int(np.rint(high_rate / rate))
    require(rate * factor == high_rate,
             f'SynthesisLayer: sampling rates {rate} and {high_rate} need an integer {direction} factor')
    return factor

#----------------------------------------------------------------------------

def _geometric(start, end, t):
    # Interpolate geometrically: start at t = 0, end at t = 1.
    return start * (end / start) ** t

def synthesis_schedule(
    img_resolution,                 # Side of the square output image.
    img_channels,                   # Channels of the output image.
    channel_base        = 32768,    # Channels of a layer = channel_base / (2 f_c), capped at channel_max.
    channel_max         = 512,      # Cap on the channels of any layer.
    num_layers          = 14,       # Synthesis layers N between the Fourier input and ToRGB.
    num_critical        = 2,        # Of those, how many at the end run critically sampled.
    first_cutoff        = 2,        # f_c of layer 0.
    first_stopband      = 2**2.1,   # f_t of layer 0.
    last_stopband_rel   = 2**0.3,   # f_t of the last layer as a multiple of its cutoff (res / 2).
    margin_size         = 10,       # Extra pixels kept on every side of the intermediate grids.
):
    """Signal description of every synthesis layer: cutoffs, stopbands, sampling rates, half-widths,
    grid sizes and channel counts, as an EasyDict of arrays indexed 0 ... num_layers (the last is ToRGB).
    Raises ValueError for settings that cannot produce a network."""
    require(is_power_of_two(img_resolution) and img_resolution >= 16,
             f'img_resolution must be a power of two >= 16 for StyleGAN3, got {img_resolution}')
    require(is_int(img_channels, 1), f'img_channels must be >= 1, got {img_channels}')
    require(channel_base >= 1, f'channel_base must be >= 1, got {channel_base}')
    require(channel_max >= 1, f'channel_max must be >= 1, got {channel_max}')
    require(is_int(num_critical, 0), f'num_critical must be an integer >= 0, got {num_critical}')
    require(is_int(num_layers, 0) and num_layers > num_critical,
             f'num_layers ({num_layers}) must be an integer greater than num_critical ({num_critical})')
    require(is_int(margin_size, 0), f'margin_size must be an integer >= 0, got {margin_size}')
    require(first_cutoff > 0 and first_stopband > first_cutoff,
             f'need 0 < first_cutoff ({first_cutoff}) < first_stopband ({first_stopband})')
    require(last_stopband_rel > 1, f'last_stopband_rel must be > 1, got {last_stopband_rel}')
    require(first_cutoff < img_resolution / 2,
             f'first_cutoff ({first_cutoff}) must be below the Nyquist frequency {img_resolution / 2}')

    # Cutoff and stopband grow geometrically from layer 0 to layer N - N_c and stay flat after it; the
    # last cutoff is the Nyquist frequency of the output image.
    t = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    nyquist = img_resolution / 2
    cutoffs = _geometric(first_cutoff, nyquist, t)
    stopbands = _geometric(first_stopband, nyquist * last_stopband_rel, t)

    # Smallest power-of-two rate that keeps the stopband (capped at the image resolution); the
    # transition band then reaches from the cutoff up to the larger of stopband and Nyquist.
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(2 * stopbands, img_resolution))))
    half_widths = np.maximum(stopbands, 0.5 * sampling_rates) - cutoffs

    # Intermediate grids carry a margin; the last two layers produce the image itself.
    sizes = sampling_rates + 2 * margin_size
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum(channel_base / (2 * cutoffs), channel_max))
    channels[-1] = img_channels
    require(channels.min() >= 1, f'channel_base {channel_base} is too small: some layers would have 0 channels')
    return dnnlib.EasyDict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates,
                           half_widths=half_widths, sizes=sizes, channels=channels)

def _layer_spec(sched, idx, num_critical, num_fp16_res, img_resolution):
    # SynthesisLayer arguments for layer `idx`: its input side is the previous schedule entry (layer 0
    # reads the Fourier features, which share its entry), its output side is entry `idx`.
    last = len(sched.cutoffs) - 1
    src = max(idx - 1, 0)
    spec = dict(
        is_torgb                = (idx == last),
        is_critically_sampled   = (idx >= last - num_critical),
        use_fp16                = bool(sched.sampling_rates[idx] * 2 ** num_fp16_res > img_resolution),
    )
    for name, column, cast in [('channels', 'channels', int), ('size', 'sizes', int),
                               ('sampling_rate', 'sampling_rates', int), ('cutoff', 'cutoffs', None),
                               ('half_width', 'half_widths', None)]:
        src_value, dst_value = sched[column][src], sched[column][idx]
        spec['in_' + name] = cast(src_value) if cast else src_value
        spec['out_' + name] = cast(dst_value) if cast else dst_value
    return spec

_LAYER_OPTIONS = ('conv_kernel', 'filter_size', 'lrelu_upsampling', 'use_radial_filters', 'conv_clamp',
                  'magnitude_ema_beta')

def _check_layer_options(options):
    unknown = sorted(set(options) - set(_LAYER_OPTIONS))
    require(not unknown, f'unknown StyleGAN3 synthesis option(s) {unknown}; known: {sorted(_LAYER_OPTIONS)}')
    for name in ('conv_kernel', 'filter_size', 'lrelu_upsampling'):
        if name in options:
            require(is_int(options[name], 1), f'{name} must be an integer >= 1, got {options[name]}')
    if options.get('conv_clamp') is not None:
        require(options['conv_clamp'] > 0, f'conv_clamp must be > 0 or None, got {options["conv_clamp"]}')
    if 'magnitude_ema_beta' in options:
        beta = options['magnitude_ema_beta']
        require(0 <= beta <= 1, f'magnitude_ema_beta must lie in [0, 1], got {beta}')

@persistence.persistent_class
class SynthesisNetwork(nn.Module):
    """Fourier input, num_layers filtered layers and ToRGB, laid out by synthesis_schedule()."""

    def __init__(self,
        w_dim,                          # Length of w.
        img_resolution,                 # Side of the square output image.
        img_channels,                   # Channels of the output image.
        channel_base        = 32768,    # Channel rule numerator (see synthesis_schedule).
        channel_max         = 512,      # Cap on the channels of any layer.
        num_layers          = 14,       # Layers between the Fourier input and ToRGB.
        num_critical        = 2,        # Critically sampled layers at the end.
        first_cutoff        = 2,        # f_c of layer 0.
        first_stopband      = 2**2.1,   # f_t of layer 0.
        last_stopband_rel   = 2**0.3,   # Last f_t relative to the last cutoff.
        margin_size         = 10,       # Extra border pixels of the intermediate grids.
        output_scale        = 0.25,     # Multiplies the ToRGB output.
        num_fp16_res        = 4,        # Layers whose rate exceeds img_resolution / 2**num_fp16_res run fp16 (CUDA).
        **layer_kwargs,                 # Options for every SynthesisLayer (see _LAYER_OPTIONS).
    ):
        super().__init__()
        require(w_dim >= 1, f'w_dim must be >= 1, got {w_dim}')
        require(is_int(num_fp16_res, 0), f'num_fp16_res must be an integer >= 0, got {num_fp16_res}')
        sched = synthesis_schedule(img_resolution, img_channels, channel_base=channel_base,
                                   channel_max=channel_max, num_layers=num_layers, num_critical=num_critical,
                                   first_cutoff=first_cutoff, first_stopband=first_stopband,
                                   last_stopband_rel=last_stopband_rel, margin_size=margin_size)
        _check_layer_options(layer_kwargs)
        self.w_dim, self.num_ws = w_dim, num_layers + 2     # One w for the input, one per layer.
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.num_layers, self.num_critical = num_layers, num_critical
        self.margin_size, self.output_scale, self.num_fp16_res = margin_size, output_scale, num_fp16_res

        # Build in seeded-initialisation order: the input first, then layers L0 ... L{num_layers}.
        self.input = SynthesisInput(w_dim=w_dim, channels=int(sched.channels[0]), size=int(sched.sizes[0]),
                                    sampling_rate=sched.sampling_rates[0], bandwidth=sched.cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            spec = _layer_spec(sched, idx, num_critical, num_fp16_res, img_resolution)
            layer = SynthesisLayer(w_dim=w_dim, **spec, **layer_kwargs)
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'   # Pickles depend on these names.
            self.add_module(name, layer)
            self.layer_names.append(name)

    def forward(self, ws, **layer_kwargs): # ws: [N, num_ws, w_dim]
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        w_input, *w_layers = ws.float().unbind(dim=1)
        x = self.input(w_input)
        for name, w in zip(self.layer_names, w_layers):
            x = self.get_submodule(name)(x, w, **layer_kwargs)
        img = (x * self.output_scale).float()
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'image')
        return img

    def extra_repr(self):
        lines = [('w_dim', 'num_ws'), ('img_resolution', 'img_channels'), ('num_layers', 'num_critical'),
                 ('margin_size', 'num_fp16_res')]
        return ',\n'.join(_repr_fields(self, *names) for names in lines)

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(networks_common.GeneratorBase):
    """The full generator: z (and c) -> mapping -> ws -> synthesis -> image."""

    def __init__(self,
        z_dim,                      # Length of the latent z.
        c_dim,                      # Length of the label c; 0 = unconditional.
        w_dim,                      # Length of the intermediate latent w.
        img_resolution,             # Side of the square output image.
        img_channels,               # Channels of the output image.
        mapping_kwargs      = None, # Options for MappingNetwork; None = its defaults.
        **synthesis_kwargs,         # Options for SynthesisNetwork and its layers.
    ):
        super().__init__()
        self._build(SynthesisNetwork, MappingNetwork, z_dim, c_dim, w_dim, img_resolution, img_channels,
                    mapping_kwargs, synthesis_kwargs)

#----------------------------------------------------------------------------
