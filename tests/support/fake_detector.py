# A deterministic stand-in for the Inception/VGG detectors in metric pipeline tests: images are
# box-downsampled to 8x8, scaled to [-1, 1] and projected to `num_features` by a fixed seeded random
# matrix. No files, no network; counts its calls so tests can see when it was (not) used.

import numpy as np
import torch

#----------------------------------------------------------------------------

class FakeDetector:
    def __init__(self, name='inception', num_features=64, seed=123, pooled_size=8):
        self.name = name
        self.num_features = num_features
        self.pooled_size = pooled_size
        self.cache_key = f'fake-{name}-{num_features}-{seed}-{pooled_size}'
        rng = np.random.RandomState(seed)
        in_dim = 3 * pooled_size * pooled_size
        self.weight = torch.from_numpy((rng.randn(in_dim, num_features) / np.sqrt(in_dim)).astype(np.float32))
        self.num_calls = 0
        self.num_images = 0

    def __call__(self, images, **_kwargs):
        assert images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1] == 3
        self.num_calls += 1
        self.num_images += images.shape[0]
        x = images.to(torch.float32) / 127.5 - 1
        x = torch.nn.functional.adaptive_avg_pool2d(x, self.pooled_size)
        return x.flatten(1) @ self.weight

#----------------------------------------------------------------------------
