# bench/collapse.py: the left-disc detector on drawn discs, the measures of a network that uses z against
# one that ignores it, StyleGAN2 (no style ratio, repeatable despite its noise inputs), and the command
# line on a snapshot and on a dataset zip.

import json

import click.testing
import pytest
import torch

from tests.integration.helpers import phantom_zip
from tests.support.bench import load_bench
from torch_utils.persistence import save_network_pkl
from training import networks_stylegan2, networks_stylegan3

def _load():
    return load_bench('collapse')

@pytest.fixture(scope='module')
def bench():
    return _load()

def _sg3(seed=0):
    torch.manual_seed(seed)
    return networks_stylegan3.Generator(z_dim=8, w_dim=8, c_dim=5, img_resolution=16, img_channels=3, channel_base=128,
                                        channel_max=8, num_layers=3, margin_size=2, mapping_kwargs=dict(num_layers=1)).eval()

def _discs(columns, size=32):
    # Dark images, each with one bright disc of radius 3 centred at (row 16, column).
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    img = -torch.ones(len(columns), 3, size, size)
    for i, col in enumerate(columns):
        img[i, :, (yy - 16) ** 2 + (xx - col) ** 2 <= 9] = 1
    return img

def test_left_share_finds_the_side_of_the_bright_disc(bench):
    assert bench.left_share(_discs([5, 8, 11, 14])) == 1.0
    assert bench.left_share(_discs([18, 21, 26, 27])) == 0.0
    assert bench.left_share(_discs([6, 25, 9, 22])) == 0.5

def test_a_generator_that_ignores_z_measures_as_collapsed(bench):
    live = bench.measure_network(_sg3())
    assert len(live['std']) == len(live['left']) == 5
    assert min(live['std']) > 1e-3 and 0.05 < live['style'] < 2
    dead = _sg3()
    with torch.no_grad():
        for name, p in dead.mapping.named_parameters():
            if 'weight' in name:
                p.zero_()                                   # w no longer depends on z (or c).
    collapsed = bench.measure_network(dead)
    assert max(collapsed['std']) < 1e-5 and collapsed['style'] < 1e-5
    assert all(share in (0.0, 1.0) for share in collapsed['left'])   # One image, drawn 32 times.

def test_stylegan2_has_no_style_ratio_and_repeats_despite_noise(bench):
    torch.manual_seed(0)
    G = networks_stylegan2.Generator(z_dim=8, w_dim=8, c_dim=5, img_resolution=16, img_channels=3, channel_base=128,
                                     channel_max=8, mapping_kwargs=dict(num_layers=1)).eval()
    first, second = bench.measure_network(G), bench.measure_network(G)
    assert first['style'] is None and first == second

def test_command_line_on_a_snapshot_and_a_zip(bench, tmp_path):
    pkl = tmp_path / 'network-snapshot-000000.pkl'
    save_network_pkl(str(pkl), dict(G=_sg3(1), G_ema=_sg3(2)))
    data = phantom_zip(tmp_path / 'phantoms.zip', 40)
    result = click.testing.CliRunner().invoke(bench.main, [str(pkl), data])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    snapshot = json.loads(lines[0].split(' ', 1)[1])
    assert set(snapshot) == {'G', 'G_ema'} and snapshot['G'] != snapshot['G_ema']
    reals = json.loads(lines[1].split(' ', 1)[1])
    assert 0.2 <= reals['left'] <= 0.8 and reals['std'] > 0.01

def test_bad_files_are_named_without_a_traceback(bench, tmp_path):
    for name, message in (('junk.pkl', 'not a network snapshot'), ('junk.zip', 'not a dataset zip')):
        (tmp_path / name).write_bytes(b'junk')
        result = click.testing.CliRunner().invoke(bench.main, [str(tmp_path / name)])
        assert result.exit_code == 1 and name in result.output and message in result.output
        assert 'Traceback' not in result.output
    result = click.testing.CliRunner().invoke(bench.main, ['--threads=0', str(tmp_path / 'junk.pkl')])
    assert result.exit_code == 2 and '--threads' in result.output
