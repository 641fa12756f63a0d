# fundus.report on synthetic run directories written in NVIDIA's file formats (training_options.json,
# stats.jsonl, metric-*.jsonl, PNG grids): sections, embedded images, missing pieces, bad input.

import base64
import io
import json
import os
import re

import numpy as np
import PIL.Image
from click.testing import CliRunner

from fundus.report import __main__ as report_cli
from fundus.report import run as report
from training import run_dir

#----------------------------------------------------------------------------
# A tiny run directory in the formats the training loop and metrics write.

def _stat(mean, num=1):
    return dict(num=num, mean=mean, std=0.0)

def write_run(run_dir, with_metrics=True, with_images=True, with_spectrum=False):
    os.makedirs(run_dir, exist_ok=True)
    options = dict(
        G_kwargs=dict(class_name='training.networks_stylegan3.Generator', z_dim=512, w_dim=512, conv_kernel=3),
        training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=os.path.join(run_dir, 'absent.zip'),
                                 use_labels=True, max_size=500, xflip=False, resolution=64),
        loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0.5),
        batch_size=16, total_kimg=10, random_seed=0)
    with open(os.path.join(run_dir, 'training_options.json'), 'w') as f:
        json.dump(options, f, indent=2)
    with open(os.path.join(run_dir, 'stats.jsonl'), 'w') as f:
        for tick in range(6):
            row = {'Progress/tick': _stat(tick), 'Progress/kimg': _stat(tick * 0.5), 'Progress/augment': _stat(0.01 * tick),
                   'Timing/total_sec': _stat(75.0 * tick), 'Loss/G/loss': _stat(2.0 - 0.1 * tick, 8),
                   'Loss/D/loss': _stat(1.0 + 0.05 * tick, 8), 'Loss/signs/real': _stat(0.1 * tick, 8),
                   'Loss/scores/real': _stat(0.2 * tick, 8), 'Loss/scores/fake': _stat(-0.2 * tick, 8),
                   'Loss/r1_penalty': _stat(0.01 * tick, 2), 'timestamp': 1.7e9 + 75.0 * tick}
            f.write(json.dumps(row) + '\n')
    if with_metrics:
        with open(os.path.join(run_dir, 'metric-fid50k_full.jsonl'), 'w') as f:
            for kimg, fid in [(1, 250.25), (2, 180.5)]:
                # The bootstrap keys metrics.bootstrap.summarize() writes.
                results = {'fid50k_full': fid, 'fid50k_full_boot_mean': fid + 4, 'fid50k_full_boot_p2.5': fid + 3,
                           'fid50k_full_boot_p97.5': fid + 5, 'fid50k_full_boot_n': 200}
                f.write(json.dumps(dict(results=results, metric='fid50k_full', total_time=3.0, total_time_str='3s', num_gpus=1,
                                        snapshot_pkl=f'network-snapshot-{kimg:06d}.pkl', timestamp=1.7e9)) + '\n')
            f.write('{"results": {"fid50k_full": 1') # A run killed mid-write leaves a partial line.
        with open(os.path.join(run_dir, 'metric-kid50k_full.jsonl'), 'w') as f:
            f.write(json.dumps(dict(results=dict(kid50k_full=0.0625), metric='kid50k_full', total_time=3.0, total_time_str='3s',
                                    num_gpus=1, snapshot_pkl='network-snapshot-000002.pkl', timestamp=1.7e9)) + '\n')
    if with_images:
        rs = np.random.RandomState(0)
        PIL.Image.fromarray((rs.rand(64, 128, 3) * 255).astype(np.uint8)).save(os.path.join(run_dir, 'reals.png'))
        PIL.Image.fromarray((rs.rand(64, 128, 3) * 255).astype(np.uint8)).save(os.path.join(run_dir, 'fakes000002.png'))
    if with_spectrum:
        marker = np.zeros([40, 60, 3], dtype=np.uint8)
        marker[:, :30] = [255, 0, 0]
        PIL.Image.fromarray(marker).save(os.path.join(run_dir, 'spectrum-profile.png'))
        with open(os.path.join(run_dir, 'spectrum.json'), 'w') as f:
            json.dump(dict(spectral_distance=1.234), f)
    return run_dir

def write_memorization(run_dir):
    name = 'memorization200'
    results = {f'{name}_nn_median': 12.5, f'{name}_ref_nn_median': 10.0, f'{name}_nn_ratio': 1.25, f'{name}_threshold': 4.0,
               f'{name}_near_copies': 3, f'{name}_near_copy_fraction': 0.015, f'{name}_mannwhitney_p': 0.75,
               f'{name}_ssim_median': 0.31, f'{name}_ssim_max': 0.52, f'{name}_num_gen': 200, f'{name}_num_ref': 150}
    with open(os.path.join(run_dir, f'metric-{name}.jsonl'), 'w') as f:
        f.write(json.dumps(dict(results=results, metric=name, total_time=1.0, total_time_str='1s', num_gpus=1,
                                snapshot_pkl='network-snapshot-000002.pkl', timestamp=1.7e9)) + '\n')

def embedded_images(text):
    """Decode every data URI of a page into a PIL image."""
    images = []
    for match in re.finditer(r'src="data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)"', text):
        images.append(PIL.Image.open(io.BytesIO(base64.b64decode(match.group(2)))))
    return images

def section_html(text, anchor):
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', text, re.S)
    assert match is not None, f'section {anchor} missing'
    return match.group(1)

#----------------------------------------------------------------------------

def test_report_has_every_section_and_embedded_images(tmp_path):
    run_dir = write_run(str(tmp_path / 'run'))
    path = report.write_report(run_dir, generate=False)
    assert path == os.path.join(run_dir, 'report.html')
    text = open(path, encoding='utf-8').read()
    for anchor in ('summary', 'metrics', 'curves', 'images', 'spectra', 'memorization', 'options'):
        section_html(text, anchor)
    # Self-contained: no file or web references, only data URIs.
    assert not re.search(r'src="(?!data:)', text)
    images = embedded_images(text)
    # Training curves, the metric curve (FID at two snapshots), reals.png and the latest fakes grid.
    assert len(images) == 4
    curves = np.asarray(images[0].convert('L'), dtype=np.float64)
    assert curves.shape[1] > 500 and curves.std() > 5 # a drawn figure, not a blank canvas
    reals = np.asarray(images[2].convert('RGB'))
    assert reals.shape == (64, 128, 3)
    original = np.asarray(PIL.Image.open(os.path.join(run_dir, 'reals.png')))
    np.testing.assert_array_equal(reals, original) # small grids travel as lossless PNG

def test_report_metric_table_values_and_bootstrap_interval(tmp_path):
    text = open(report.write_report(write_run(str(tmp_path / 'run')), generate=False), encoding='utf-8').read()
    table = section_html(text, 'metrics')
    assert '180.50' in table and '250.25' not in table  # the latest complete line, not the first
    assert '183.50 - 185.50' in table and '184.50' in table # the 95% interval and the bootstrap mean
    assert '200 resamples' in table and '>200<' not in table  # the count annotates the interval, is no metric
    assert '0.0625' in table
    assert 'Frechet Inception Distance' in table and 'Kernel Inception Distance' in table
    # EQ-T/EQ-R were not computed: said in words, and the partial jsonl line is reported, not fatal.
    assert 'Not computed for this run' in table and 'EQ-T' in table
    assert 'metric-fid50k_full.jsonl line 3' in text

def test_report_summary_reads_options_and_stats(tmp_path):
    text = open(report.write_report(write_run(str(tmp_path / 'run')), generate=False), encoding='utf-8').read()
    summary = section_html(text, 'summary')
    assert 'StyleGAN3-T' in summary
    assert '2.5 thousand real images' in summary    # last Progress/kimg
    assert '6m 15s' in summary                      # 375 s of Timing/total_sec
    assert '500 images, 64x64 pixels, with grade labels' in summary
    options = section_html(text, 'options')
    assert 'loss_kwargs.r1_gamma' in options and '0.5' in options

def test_training_time_from_timestamps_when_total_is_not_logged():
    stats = [{'timestamp': 1000.0, 'Timing/sec_per_tick': {'num': 1, 'mean': 30.0, 'std': 0}}, {'timestamp': 1100.0}]
    assert run_dir.training_seconds(stats) == 130.0
    assert run_dir.training_seconds([]) is None

def test_report_missing_pieces_are_named_not_fatal(tmp_path):
    run_dir = str(tmp_path / 'empty')
    os.makedirs(run_dir)
    text = open(report.write_report(run_dir, generate=False), encoding='utf-8').read()
    for anchor in ('metrics', 'curves', 'images', 'spectra', 'memorization', 'options'):
        assert report.NOT_COMPUTED in section_html(text, anchor), anchor
    assert embedded_images(text) == []

def test_report_embeds_spectrum_outputs(tmp_path):
    run_dir = write_run(str(tmp_path / 'run'), with_metrics=False, with_spectrum=True)
    text = open(report.write_report(run_dir, generate=False), encoding='utf-8').read()
    spectra = section_html(text, 'spectra')
    assert report.NOT_COMPUTED not in spectra
    assert 'spectral_distance' in spectra and '1.234' in spectra
    (img,) = embedded_images(spectra)
    arr = np.asarray(img.convert('RGB'))
    assert arr.shape == (40, 60, 3) and tuple(arr[0, 0]) == (255, 0, 0) and tuple(arr[0, 59]) == (0, 0, 0)

def test_report_memorisation_panel_in_plain_words(tmp_path):
    run_dir = write_run(str(tmp_path / 'run'))
    write_memorization(run_dir)
    text = open(report.write_report(run_dir, generate=False), encoding='utf-8').read()
    panel = section_html(text, 'memorization')
    assert report.NOT_COMPUTED not in panel # numbers without a pairs picture are still shown
    assert '200 synthetic, 150 real reference images' in panel
    assert re.search(r'Near-copies</th><td class="num">3</td>', panel)
    assert re.search(r'Ratio synthetic / real</th><td class="num">1.25</td>', panel)
    # The audit's keys stay out of the quality table; its image counts are no metrics either.
    assert 'memorization200' not in section_html(text, 'metrics')

def test_metric_rows_group_interval_keys():
    metrics = {'fid10k_full': [dict(results={'fid10k_full': 20.0, 'fid10k_full_boot_p2.5': 21.0, 'fid10k_full_boot_p97.5': 23.0,
                                             'fid10k_full_boot_mean': 22.0}, snapshot_pkl='x/network-snapshot-000040.pkl')],
               'spectrum200': [dict(results=dict(spectrum200=1.5, spectrum200_num_real=150, spectrum200_num_gen=200), snapshot_pkl=None)],
               'pr50k3_full': [dict(results=dict(pr50k3_full_precision=0.7, pr50k3_full_recall=0.4), snapshot_pkl=None)]}
    rows = {r['name']: r for r in report.metric_rows(metrics)}
    assert set(rows) == {'fid10k_full', 'spectrum200', 'pr50k3_full_precision', 'pr50k3_full_recall'}
    assert rows['spectrum200']['counts'] == dict(num_real=150, num_gen=200) and rows['spectrum200']['family'] == 'spectrum'
    assert rows['fid10k_full']['interval'] == dict(low=21.0, high=23.0, mean=22.0)
    assert rows['fid10k_full']['kimg'] == 40 and rows['fid10k_full']['family'] == 'fid'
    assert rows['pr50k3_full_recall']['family'] == 'pr' and rows['pr50k3_full_recall']['kimg'] is None

def test_report_cli_writes_and_rejects_missing_dir(tmp_path):
    run_dir = write_run(str(tmp_path / 'run'), with_metrics=False)
    out = str(tmp_path / 'r.html')
    result = CliRunner().invoke(report_cli.main, [run_dir, f'--out={out}', '--no-generate'])
    assert result.exit_code == 0, result.output
    assert os.path.isfile(out) and out in result.output
    result = CliRunner().invoke(report_cli.main, [str(tmp_path / 'nope')])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [f'Error: run directory not found: {tmp_path / "nope"}']

#----------------------------------------------------------------------------
