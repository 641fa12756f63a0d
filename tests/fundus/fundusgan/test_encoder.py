# The w+ encoder: exactly G.num_ws vectors for SG2 / SG3-T / SG3-R generators and official-layout
# pickles, pyramid level shapes, the style split, and one-line errors for wrong sizes and missing w_avg.

import pytest
import torch

from fundus.fundusgan import common
from fundus.fundusgan import encoder as encoder_lib
from fundus.fundusgan import generator as generator_lib
from fundus.fundusgan import train as train_lib
from tests.fundus.fundusgan import helpers
from tests.support import official_pickles
from tests.support import tiny_configs

#----------------------------------------------------------------------------

@pytest.mark.parametrize('kind,res,num_ws', [('sg2', 32, 8), ('sg2', 64, 10), ('sg3', 32, 6), ('sg3r', 32, 6)])
def test_encoder_emits_num_ws_and_reconstructs(kind, res, num_ws):
    G = helpers.tiny_generator(kind, res)
    assert G.num_ws == num_ws
    E = encoder_lib.build_encoder(G, **helpers.TINY_ENCODER)
    x = torch.rand([2, 3, res, res]) * 2 - 1
    img, ws = generator_lib.reconstruct(E, G, x)
    assert ws.shape == (2, num_ws, G.w_dim) and img.shape == (2, 3, res, res)
    assert torch.isfinite(img).all()
    # Offsets start small: the first reconstruction is close to the w_avg image.
    assert (ws - G.mapping.w_avg).abs().max() < 0.5 * G.mapping.w_avg.abs().max() + 1

def test_sg3_num_ws_is_16_at_every_resolution():
    for res in (32, 64):
        G = tiny_configs.build(tiny_configs.sg3_generator_kwargs(img_resolution=res, num_layers=14))
        assert encoder_lib.build_encoder(G, **helpers.TINY_ENCODER).num_ws == 16

def test_pyramid_levels_have_the_documented_shapes():
    G = helpers.tiny_generator('sg2', 64)
    E = encoder_lib.build_encoder(G, **helpers.TINY_ENCODER)
    offsets, feats = E(torch.zeros([3, 3, 64, 64]), return_pyramid=True)
    assert feats['low'].shape == (3, 16, 2, 2) and feats['mid'].shape == (3, 16, 4, 4) and feats['high'].shape == (3, 16, 8, 8)
    assert E.levels == ['low'] * 3 + ['mid'] * 4 + ['high'] * 3
    assert offsets.shape == (3, 10, 32)

def test_style_split_is_configurable_and_checked():
    G = helpers.tiny_generator('sg2', 64)
    E = encoder_lib.build_encoder(G, coarse_end=2, middle_end=5, **helpers.TINY_ENCODER)
    assert E.levels == ['low'] * 2 + ['mid'] * 3 + ['high'] * 5
    with pytest.raises(common.FundusGANError, match='coarse_end'):
        encoder_lib.style_levels(10, 6, 4)

@pytest.mark.parametrize('backbone', ['resnet34', 'resnet50'])
def test_deeper_backbones_build(backbone):
    G = helpers.tiny_generator('sg2', 32)
    E = encoder_lib.build_encoder(G, backbone=backbone, width=4, fpn_channels=8)
    assert E(torch.zeros([2, 3, 32, 32])).shape == (2, 8, 32)

def test_wrong_resolution_names_both_sizes():
    G = helpers.tiny_generator('sg2', 32)
    E = encoder_lib.build_encoder(G, **helpers.TINY_ENCODER)
    with pytest.raises(common.FundusGANError, match=r'64x64.*32x32'):
        E(torch.zeros([1, 3, 64, 64]))
    with pytest.raises(common.FundusGANError, match=r'32x48'):
        E(torch.zeros([1, 3, 48, 32]))

def test_snapshot_without_w_avg_is_refused(tmp_path):
    kwargs = tiny_configs.sg2_generator_kwargs(img_resolution=32)
    kwargs.mapping_kwargs['w_avg_beta'] = None
    G = tiny_configs.build(kwargs)
    path = tmp_path / 'no-wavg.pkl'
    from torch_utils import persistence
    persistence.save_network_pkl(path, dict(G_ema=G))
    with pytest.raises(common.FundusGANError, match='w_avg'):
        train_lib.load_base_generator(str(path))

def test_official_layout_pickle_serves_an_encoder(tmp_path):
    G = helpers.tiny_generator('sg2', 32)
    path = tmp_path / 'official.pkl'
    path.write_bytes(official_pickles.official_snapshot_bytes(official_pickles.evil_src(tmp_path / 'ran'), G=G, G_ema=G))
    G2 = train_lib.load_base_generator(str(path))
    assert not (tmp_path / 'ran').exists()
    E = encoder_lib.build_encoder(G2, **helpers.TINY_ENCODER).eval()
    x = torch.rand([2, 3, 32, 32], generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        a, _ = generator_lib.reconstruct(E, G, x)
        b, _ = generator_lib.reconstruct(E, G2, x)
    assert torch.allclose(a, b, atol=1e-5)

def test_backbone_weights_load_from_a_torchvision_state_dict(tmp_path):
    import torchvision
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / 'r18.pt'
    torch.save(ref.state_dict(), path)
    G = helpers.tiny_generator('sg2', 32)
    E = encoder_lib.build_encoder(G, backbone='resnet18', width=64, fpn_channels=8)
    assert encoder_lib.load_backbone_weights(E, str(path)) == len(E.trunk.state_dict())
    assert torch.equal(E.trunk.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)
    E_small = encoder_lib.build_encoder(G, **helpers.TINY_ENCODER)
    with pytest.raises(common.FundusGANError, match='no tensor matches'):
        encoder_lib.load_backbone_weights(E_small, str(path))

#----------------------------------------------------------------------------
