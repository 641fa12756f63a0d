# gen_video.py with a tiny network and a few frames: keyframe layout, looping interpolation through the
# keyframes, an H.264 file that decodes to the expected frames, bad input, --help.

import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from training import generate
import gen_video
from tests.support import tiny_configs
from tests.support.write_help_docs import help_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    from torch_utils import persistence
    torch.manual_seed(2)
    G = tiny_configs.build(tiny_configs.sg3_generator_kwargs()).eval().requires_grad_(False)
    path = tmp_path_factory.mktemp('video') / 'sg3.pkl'
    persistence.save_network_pkl(str(path), dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None))
    return str(path)

def test_keyframe_layout():
    keys = gen_video.keyframe_seeds(list(range(12)), grid_w=3, grid_h=2)
    assert keys.shape == (2, 3, 2)
    assert keys[:, :, 0].tolist() == [[0, 1, 2], [3, 4, 5]] and keys[:, :, 1].tolist() == [[6, 7, 8], [9, 10, 11]]
    # Too few seeds for the keyframes asked for: they wrap around.
    assert gen_video.keyframe_seeds([4, 5], 1, 1, num_keyframes=3)[0, 0].tolist() == [4, 5, 4]
    with pytest.raises(generate.GenerateError, match='do not fill a 2x2 grid'):
        gen_video.keyframe_seeds([0, 1, 2], 2, 2)

def test_interpolation_passes_through_keyframes_and_loops():
    keys = np.random.RandomState(0).randn(3, 2, 4)
    f = gen_video.make_interpolator(keys)
    for k in range(3):
        np.testing.assert_allclose(f(k), keys[k], atol=1e-12)
    np.testing.assert_allclose(f(3), keys[0], atol=1e-12) # the video loops
    mid = f(0.5)
    assert not np.allclose(mid, keys[0]) and not np.allclose(mid, keys[1])

def test_video_frames_match_keyframe_images(snapshot, tmp_path):
    import imageio.v2 as imageio
    out = tmp_path / 'lerp.mp4'
    result = CliRunner().invoke(gen_video.main, [f'--network={snapshot}', '--seeds=0-3', '--grid=2x1', '--w-frames=3',
                                                 f'--output={out}', '--device=cpu'])
    assert result.exit_code == 0, result.output
    assert 'Wrote 6 frames' in result.output
    frames = np.stack([f for f in imageio.get_reader(str(out), format='FFMPEG')]) # len() is inf: no list()
    assert frames.shape == (6, 16, 32, 3)
    # Frame 0 shows seeds 0 and 1 (first keyframe of each cell); frame 3 shows seeds 2 and 3; frames in
    # between move from one to the other and back (the video loops).
    G = generate.load_generator(snapshot)
    want = {s: img.astype(np.float64) for s, img in generate.generate_images(G, [0, 1, 2, 3])}
    key_a = np.concatenate([want[0], want[1]], axis=1)
    key_b = np.concatenate([want[2], want[3]], axis=1)
    err_a = [np.abs(f - key_a).mean() for f in frames.astype(np.float64)]
    err_b = [np.abs(f - key_b).mean() for f in frames.astype(np.float64)]
    # H.264 at 16x32 is lossy (measured 1.9-2.5 levels at the keyframes, 10.7 between the two keyframes).
    assert err_a[0] < 5 and err_a[0] < 0.5 * err_b[0]
    assert err_b[3] < 5 and err_b[3] < 0.5 * err_a[3]
    assert err_a[0] < err_a[1] < err_a[2] < err_a[3] and err_a[3] > err_a[4] > err_a[5]

def test_video_bad_input(snapshot, tmp_path):
    result = CliRunner().invoke(gen_video.main, [f'--network={snapshot}', '--seeds=0-2', '--grid=2x2', f'--output={tmp_path / "v.mp4"}'])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ['Error: --seeds: 3 seeds do not fill a 2x2 grid evenly; give a multiple of 4 or set --num-keyframes']
    result = CliRunner().invoke(gen_video.main, [f'--network={snapshot}', '--seeds=0', '--grid=0x2', f'--output={tmp_path / "v.mp4"}'])
    assert result.exit_code == 1 and '--grid: expected WxH' in result.output
    assert not os.path.exists(tmp_path / 'v.mp4')

def test_help_equals_docs():
    with open(os.path.join(ROOT, 'docs', 'gen-video-help.txt')) as f:
        assert help_text('gen_video.py') == f.read()

#----------------------------------------------------------------------------
