# Average power spectra of real and generated images, following StyleGAN3's avg_spectra recipe: whiten
# each uint8 image with the real set's mean and std (over all pixels and channels), multiply by a separable
# Kaiser window (beta 8, unit energy), zero-pad to 4x the size, |FFT2|^2 averaged over channels and
# images. Plus the radially averaged profile in dB, a scalar spectral distance between the two profiles
# (log-spectral distance, dB RMS) and PNG plots.

import os

import numpy as np
import torch

import dnnlib
from metrics import metric_utils

#----------------------------------------------------------------------------

def kaiser_window_2d(size, beta=8):
    w = torch.kaiser_window(size, periodic=False, beta=beta, dtype=torch.float64)
    w = w / w.square().sum().sqrt() # 1-D unit energy, so the outer product has unit energy too.
    return w[:, None] * w[None, :]

class SpectrumAccumulator:
    def __init__(self, image_size, mean, std, beta=8, interp=4):
        self.image_size = image_size
        self.spectrum_size = image_size * interp
        self.mean, self.std = float(mean), float(std)
        self.window = kaiser_window_2d(image_size, beta)
        self.total = torch.zeros([self.spectrum_size, self.spectrum_size], dtype=torch.float64)
        self.num = 0

    def append(self, images):
        """uint8 [N, C, H, W] with H = W = image_size."""
        if images.shape[2] != self.image_size or images.shape[3] != self.image_size:
            raise metric_utils.MetricError(f'spectrum: images are {images.shape[3]}x{images.shape[2]}, expected {self.image_size}x{self.image_size}')
        x = (images.to(torch.float64) - self.mean) / self.std * self.window
        power = torch.fft.fftn(x, s=[self.spectrum_size, self.spectrum_size], dim=[2, 3]).abs().square() # Zero-padded right/bottom.
        self.total += power.mean(dim=1).sum(dim=0)
        self.num += images.shape[0]

    def spectrum(self):
        return (self.total / max(self.num, 1)).numpy()

def radial_profile(spectrum, image_size):
    """Mean power over rings of integer radius (in FFT bins) around DC; returns (freqs cycles/px, power)."""
    n = spectrum.shape[0]
    f = np.fft.fftfreq(n) # Cycles per (padded) sample = cycles per pixel of the original image.
    r = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) * n
    bins = np.round(r).astype(np.int64)
    count = np.bincount(bins.ravel())
    total = np.bincount(bins.ravel(), weights=spectrum.ravel())
    keep = np.arange(len(count)) <= n // 2 # Up to Nyquist along the axes.
    freqs = np.arange(len(count))[keep] / n
    return freqs, total[keep] / np.maximum(count[keep], 1)

def spectral_distance(profile_a, profile_b, eps=1e-20):
    """Log-spectral distance: RMS difference of the profiles in dB."""
    da = 10 * np.log10(np.maximum(profile_a, eps))
    db = 10 * np.log10(np.maximum(profile_b, eps))
    return float(np.sqrt(np.mean((da - db) ** 2)))

def dataset_mean_std(images_iter):
    """Mean and population std over all pixels and channels (uint8 units), float64."""
    s, s2, n = 0.0, 0.0, 0
    for images in images_iter:
        x = images.to(torch.float64)
        s += float(x.sum())
        s2 += float(x.square().sum())
        n += x.numel()
    mean = s / n
    return mean, float(np.sqrt(max(s2 / n - mean * mean, 0)))

#----------------------------------------------------------------------------

def save_plots(path, spec_real, spec_gen, image_size, profiles):
    from matplotlib.figure import Figure # Only needed when plotting; a bare Figure needs no backend switch.
    fig = Figure(figsize=(15, 4.6))
    axes = fig.subplots(1, 3)
    half = image_size / 2
    for ax, spec, title in [(axes[0], spec_real, 'real'), (axes[1], spec_gen, 'generated')]:
        db = 10 * np.log10(np.maximum(np.fft.fftshift(spec), 1e-20))
        im = ax.imshow(db, extent=[-half, half, -half, half], vmin=-40, vmax=20, cmap='inferno', origin='lower')
        ax.set_title(f'{title}: power spectrum (dB)')
        ax.set_xlabel('cycles per image')
        fig.colorbar(im, ax=ax, fraction=0.046)
    (freqs, real_p), (_, gen_p) = profiles
    axes[2].plot(freqs * image_size, 10 * np.log10(np.maximum(real_p, 1e-20)), label='real')
    axes[2].plot(freqs * image_size, 10 * np.log10(np.maximum(gen_p, 1e-20)), label='generated')
    axes[2].set_xlabel('radius (cycles per image)')
    axes[2].set_ylabel('power (dB)')
    axes[2].set_title('radially averaged spectrum')
    axes[2].legend()
    fig.tight_layout()
    dnnlib.atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=80))

def compute_spectrum_metric(opts, name, num_images):
    """Spectral distance between `num_images` reals and fakes; writes spectrum-<name>.png/.npz to opts.out_dir."""
    dataset = metric_utils.construct_dataset(opts.dataset_kwargs)
    num_real = min(num_images, len(dataset))
    mean, std = dataset_mean_std(metric_utils.iterate_dataset_images(opts, dataset, num_real, opts.batch_size, desc='spectrum stats'))
    size = dataset.resolution
    real = SpectrumAccumulator(size, mean, std)
    for images in metric_utils.iterate_dataset_images(opts, dataset, num_real, opts.batch_size, desc='spectrum real'):
        real.append(images)
    gen = SpectrumAccumulator(size, mean, std)
    for images in metric_utils.iterate_generated_images(opts, num_images, opts.batch_size, desc='spectrum generated'):
        gen.append(images)
    spec_real, spec_gen = real.spectrum(), gen.spectrum()
    profiles = [radial_profile(spec_real, size), radial_profile(spec_gen, size)]
    distance = spectral_distance(profiles[0][1], profiles[1][1])
    if opts.out_dir is not None and opts.rank == 0:
        os.makedirs(opts.out_dir, exist_ok=True)
        save_plots(os.path.join(opts.out_dir, f'{name}.png'), spec_real, spec_gen, size, profiles)
        dnnlib.atomic_write(os.path.join(opts.out_dir, f'{name}.npz'),
            lambda f: np.savez(f, real=spec_real, generated=spec_gen, image_size=size, mean=mean, std=std))
    return {name: distance, f'{name}_num_real': real.num, f'{name}_num_gen': gen.num}

#----------------------------------------------------------------------------
