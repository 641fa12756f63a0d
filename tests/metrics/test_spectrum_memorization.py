# Spectra (Parseval, peak location, distance) and the memorisation audit (planted copies are found).

import os
import shutil

import numpy as np
import pytest
import torch

from metrics import memorization
from metrics import metric_main
from metrics import spectrum
from tests.metrics import helpers
from tests.support.fake_detector import FakeDetector

#----------------------------------------------------------------------------

def test_window_unit_energy_and_parseval():
    w = spectrum.kaiser_window_2d(16)
    assert float(w.square().sum()) == pytest.approx(1.0, abs=1e-12)
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 16, 16)).astype(np.uint8))
    acc = spectrum.SpectrumAccumulator(16, mean=100.0, std=50.0)
    acc.append(img)
    x = (img.double() - 100) / 50 * w
    # Unnormalised FFT of size S x S: sum |X|^2 = S^2 sum |x|^2 (zero padding adds nothing).
    expected = 64 * 64 * float(x.square().sum(dim=[2, 3]).mean())
    assert float(acc.spectrum().sum()) == pytest.approx(expected, rel=1e-10)

def test_radial_profile_peak_at_cosine_frequency():
    size, cycles = 32, 6
    xs = np.arange(size)
    img = 128 + 100 * np.cos(2 * np.pi * cycles * xs / size)[None, :].repeat(size, 0)
    acc = spectrum.SpectrumAccumulator(size, mean=128.0, std=70.0)
    acc.append(torch.from_numpy(np.round(img).astype(np.uint8))[None, None].repeat([1, 3, 1, 1]))
    freqs, prof = spectrum.radial_profile(acc.spectrum(), size)
    assert freqs[np.argmax(prof)] * size == pytest.approx(cycles, abs=0.3)
    assert freqs[-1] == pytest.approx(0.5) # Up to Nyquist.

def test_spectral_distance():
    p = np.array([1.0, 0.1, 0.01])
    assert spectrum.spectral_distance(p, p) == 0
    assert spectrum.spectral_distance(p, p * 10) == pytest.approx(10.0) # 10 dB everywhere.

def test_dataset_mean_std():
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (5, 3, 8, 8)).astype(np.uint8))
    mean, std = spectrum.dataset_mean_std([x[:2], x[2:]])
    assert mean == pytest.approx(float(x.double().mean()), rel=1e-12)
    assert std == pytest.approx(float(x.double().std(unbiased=False)), rel=1e-10)

def test_spectrum_metric_writes_plots(tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 6, resolution=16, seed=1)
    out = tmp_path / 'out'
    same = metric_main.calc_metric('spectrum', dataset_kwargs=helpers.folder_kwargs(reals),
        gen_dataset_kwargs=helpers.folder_kwargs(reals), out_dir=str(out)).results
    assert same.spectrum == 0 and same.spectrum_num_real == 6
    assert (out / 'spectrum.png').stat().st_size > 1000 and (out / 'spectrum.npz').is_file()
    G = metric_main.calc_metric('spectrum1k', dataset_kwargs=helpers.folder_kwargs(reals), G=helpers.TinyGenerator()).results
    assert G.spectrum1k > 0.5 and G.spectrum1k_num_gen == 1000

#----------------------------------------------------------------------------

def test_nearest_neighbours_and_leave_one_out():
    base = np.array([[0.0, 0], [1, 0], [5, 0]])
    d, i = memorization.nearest_neighbours(np.array([[0.9, 0], [4, 0]]), base)
    np.testing.assert_allclose(d, [0.1, 1.0], rtol=1e-6) # Features are float32.
    np.testing.assert_array_equal(i, [1, 2])
    ref = memorization.reference_distances(base, 10, seed=0)
    np.testing.assert_allclose(np.sort(ref), [1, 1, 4])

def test_planted_copies_are_found(tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 24, seed=1)
    gen = helpers.write_folder(tmp_path / 'gen', 6, seed=2)
    for k in (0, 5, 11, 20): # Plant four exact copies of training images.
        shutil.copy(os.path.join(reals, f'img{k:05d}.png'), os.path.join(gen, f'copy{k:05d}.png'))
    out = tmp_path / 'out'
    r = metric_main.calc_metric('memorization', dataset_kwargs=helpers.folder_kwargs(reals), gen_dataset_kwargs=helpers.folder_kwargs(gen),
        detectors={'inception': FakeDetector()}, out_dir=str(out)).results
    assert r.memorization_num_gen == 10 and r.memorization_num_ref == 24
    assert r.memorization_near_copies == 4
    assert r.memorization_ssim_max == pytest.approx(1.0)
    assert r.memorization_threshold > 0
    rows = (out / 'memorization.csv').read_text().splitlines()
    assert len(rows) == 11 and sum(row.endswith(',1') for row in rows[1:]) == 4
    assert (out / 'memorization.png').stat().st_size > 1000

#----------------------------------------------------------------------------
