# PPL against a closed form: a linear generator and a linear "LPIPS" embedding make the distance at
# t = 0 exactly |P A (w1 - w0)|^2 for every pair.

import numpy as np
import pytest
import torch

from metrics import metric_main
from metrics import metric_utils
from metrics import perceptual_path_length as ppl_lib
from tests.metrics import helpers

#----------------------------------------------------------------------------

class LinearG(torch.nn.Module):
    def __init__(self, res=8):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.img_resolution, self.img_channels = 4, 0, 4, 1, res, 3
        g = torch.Generator().manual_seed(0)
        self.M = torch.randn([4, 4], generator=g, dtype=torch.float64)
        self.A = torch.randn([4, 3 * res * res], generator=g, dtype=torch.float64) * 0.1
        self.synthesis = lambda ws, noise_mode='random', force_fp32=False: (ws[:, 0].double() @ self.A).reshape(-1, 3, res, res)

    def mapping(self, z, c):
        return (z.double() @ self.M)[:, None]

class LinearLPIPS:
    name, cache_key = 'vgg16', 'linear'

    def __init__(self, res=8):
        self.P = torch.randn([3 * res * res, 5], generator=torch.Generator().manual_seed(1), dtype=torch.float64) / 50

    def __call__(self, img, resize_images=True, return_lpips=False):
        assert return_lpips and not resize_images
        return img.flatten(1) @ self.P

def test_ppl_wend_closed_form(tmp_path):
    G, det = LinearG(), LinearLPIPS()
    reals = helpers.folder_kwargs(helpers.write_folder(tmp_path / 'r', 1, resolution=8))
    opts = metric_utils.MetricOptions(G=G, dataset_kwargs=reals, detectors={'vgg16': det}, seed=3)
    value = ppl_lib.compute_ppl(opts, num_samples=50, epsilon=1e-4, space='w', sampling='end', crop=False, batch_size=2)
    z = torch.from_numpy(np.stack([metric_utils.sample_latent_and_label(i, 3, 4, None)[0] for i in range(100)]))
    w = z.double() @ G.M
    # Images scale by 255/2 before the embedding.
    d = (((w[1::2] - w[0::2]) @ G.A @ det.P) * 255 / 2).square().sum(dim=1).numpy()
    assert value == pytest.approx(ppl_lib.trimmed_mean(d), rel=1e-5)

def test_trimmed_mean():
    # 200 values 1..200: 1st percentile ('lower') is 2, 99th ('higher') is 199; mean of 2..199 is 100.5.
    x = np.arange(1, 201, dtype=np.float64)
    assert ppl_lib.trimmed_mean(x) == 100.5
    x[-1] = 1e9 # The top outlier is dropped.
    assert ppl_lib.trimmed_mean(x) == 100.5

def test_ppl_needs_generator(tmp_path):
    reals = helpers.folder_kwargs(helpers.write_folder(tmp_path / 'r', 1))
    with pytest.raises(metric_utils.MetricError, match='PPL needs a generator'):
        metric_main.calc_metric('ppl2_wend', dataset_kwargs=reals, gen_dataset_kwargs=reals)

#----------------------------------------------------------------------------
