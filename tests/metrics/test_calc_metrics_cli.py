# calc_metrics.py: help text, bad inputs (one clear line, non-zero exit), detector checks, and one real
# run with the offline Inception on a handful of images.

import json
import os
import pickle
import warnings

import pytest
import torch
from click.testing import CliRunner

from metrics import detectors
from metrics import weights
from metrics.errors import DetectorError
from tests.metrics import helpers
from tests.support import write_help_docs

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def cli():
    return write_help_docs.load_cli('calc_metrics.py')

def _invoke(cli, args):
    return CliRunner().invoke(cli, args, prog_name='python calc_metrics.py', terminal_width=100)

def _assert_one_line_error(result, pattern):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit) # No traceback.
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('Error: '), result.output
    assert pattern in lines[0], lines[0]

def test_help_matches_docs():
    with open(os.path.join(write_help_docs.ROOT, 'docs', 'calc-metrics-help.txt')) as f:
        assert write_help_docs.help_text('calc_metrics.py') == f.read()

def test_unknown_metric(cli, tmp_path):
    _assert_one_line_error(_invoke(cli, ['--metrics=fid50k_fulll', f'--images={tmp_path}', f'--data={tmp_path}']), 'unknown metric(s) fid50k_fulll')

def test_needs_network_or_images(cli):
    _assert_one_line_error(_invoke(cli, ['--metrics=fid50k_full']), 'give --network=PKL or --images=DIR')

def test_empty_images_folder(cli, tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 2)
    (tmp_path / 'empty').mkdir()
    _assert_one_line_error(_invoke(cli, [f'--images={tmp_path / "empty"}', f'--data={reals}', '--verbose=false']), 'contains no images')

def test_mismatched_resolutions(cli, tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 2, resolution=16)
    fakes = helpers.write_folder(tmp_path / 'fakes', 2, resolution=32)
    _assert_one_line_error(_invoke(cli, [f'--images={fakes}', f'--data={reals}', '--verbose=false']), 'mismatched resolutions: --images has 32x32 images, --data has 16x16')

def test_bad_detector_files(cli, tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 2)
    text = tmp_path / 'inception.pt'
    text.write_text('not a model')
    args = [f'--images={reals}', f'--data={reals}', '--verbose=false', '--metrics=fid1k_full']
    _assert_one_line_error(_invoke(cli, args + [f'--detector-path=inception={text}']), 'is not a TorchScript archive')
    pkl = tmp_path / 'inception.pkl'
    pkl.write_bytes(pickle.dumps({'a': 1}))
    _assert_one_line_error(_invoke(cli, args + [f'--detector-path=inception={pkl}']), 'pickled detectors are not loaded')
    other = tmp_path / 'other.pt'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning) # torch.jit is deprecated but still how TorchScript files are made.
        torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 8, 3)), str(other))
    _assert_one_line_error(_invoke(cli, args + [f'--detector-path=inception={other}']), 'not the Inception-v3 FID network')
    _assert_one_line_error(_invoke(cli, args + ['--detector-path=resnet=x.pt']), '--detector-path: expected NAME=FILE')

def test_missing_nvidia_detector_message(monkeypatch):
    def offline(*_args, **_kwargs):
        raise OSError('no network')
    monkeypatch.setattr(weights.dnnlib, 'open_url', offline)
    with pytest.raises(DetectorError, match=r'vgg16.pt .*--detector-path=vgg16=FILE, or copy it to .*gan|vgg16.pt .*--detector-path=vgg16=FILE'):
        detectors.load_detector('vgg16')

#----------------------------------------------------------------------------

@pytest.mark.slow # The offline Inception costs 1-12 s per image on a shared 2-core CPU.
def test_real_inception_run_with_json_out(cli, tmp_path):
    # Four 32-px images against themselves with the offline Inception: FID ~ 0, KID ~ 0 (both computed).
    reals = helpers.write_folder(tmp_path / 'reals', 4, resolution=32, seed=1)
    fakes = helpers.write_folder(tmp_path / 'fakes', 4, resolution=32, seed=1)
    grey = helpers.write_folder(tmp_path / 'grey', 4, resolution=32, seed=1, mode='L')
    out = tmp_path / 'out' / 'results.json'
    result = _invoke(cli, [f'--images={fakes}', f'--data={reals}', '--metrics=fid1k_full,kid1k_full', '--verbose=false', f'--out={out}', '--device=cpu'])
    assert result.exit_code == 0, result.output
    lines = [json.loads(l) for l in result.output.splitlines() if l.startswith('{')]
    assert [l['metric'] for l in lines] == ['fid1k_full', 'kid1k_full']
    data = json.loads(out.read_text())
    # 4 images in 2048-d: rank 3, sqrtm error <= 2*2045*sqrt(2048*eps)*|S| (|S| = 20.6) = 0.057; measured -6.1e-5.
    assert abs(data['fid1k_full']['results']['fid1k_full']) < 6e-2
    assert data['kid1k_full']['results']['kid1k_full'] < 1e-3
    # Greyscale copies differ from the colour reals: clearly positive FID, computed without error.
    result = _invoke(cli, [f'--images={grey}', f'--data={reals}', '--metrics=fid1k_full', '--verbose=false'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])['results']['fid1k_full'] > 1

#----------------------------------------------------------------------------
