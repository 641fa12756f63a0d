# The registry owns metric names, families and result keys: parse_metric_name, result_keys (what a family
# declares it writes), split_result_key / is_interval_key (the one parser), and calc_metric refusing keys
# a family does not declare.

import numpy as np
import pytest
import torch

from metrics import metric_main
from metrics import metric_utils
from metrics import paired
from metrics import paired_folders
from metrics.errors import MetricError
from tests.metrics import helpers
from tests.support.fake_detector import FakeDetector

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name,family', [
    ('fid50k_full', 'fid'), ('fid200', 'fid'), ('kid2k_full', 'kid'), ('pr50k3_full', 'pr'), ('is50k', 'is'),
    ('ppl2_wend', 'ppl'), ('eqt32_int', 'eqt'), ('eqt50k_frac', 'eqt'), ('eqr1k', 'eqr'), ('ssim', 'ssim'),
    ('msssim', 'msssim'), ('lpips', 'lpips'), ('lpips_vgg', 'lpips'), ('spectrum', 'spectrum'),
    ('spectrum200', 'spectrum'), ('memorization5k', 'memorization'),
])
def test_parse_metric_name_family(name, family):
    parsed = metric_main.parse_metric_name(name)
    assert parsed.name == name and parsed.family.name == family and metric_main.metric_family(name) == family

def test_parse_metric_name_sizes_and_unknown():
    assert metric_main.parse_metric_name('fid10k_full').match.groups() == ('10', 'k')
    assert metric_main.parse_metric_name('pr20k5_full').match.groups() == ('20', '5')
    for bad in ['fid0k_full', 'ssim_std', 'fid50k_full_boot_mean', 'nonsense', None]:
        assert metric_main.metric_family(bad) is None
    with pytest.raises(MetricError, match='unknown metric "fidd"'):
        metric_main.parse_metric_name('fidd')

def test_result_keys_declared_per_family():
    boot = ['fid10k_full_boot_mean', 'fid10k_full_boot_p2.5', 'fid10k_full_boot_p97.5', 'fid10k_full_boot_n']
    assert metric_main.result_keys('fid10k_full') == ['fid10k_full']
    assert metric_main.result_keys('fid10k_full', bootstrap=True) == ['fid10k_full'] + boot
    assert metric_main.result_keys('pr50k3_full', bootstrap=True) == ['pr50k3_full_precision', 'pr50k3_full_recall']
    assert metric_main.result_keys('is50k') == ['is50k_mean', 'is50k_std']
    assert metric_main.result_keys('lpips_vgg') == ['lpips_vgg', 'lpips_vgg_std', 'lpips_vgg_num']
    assert metric_main.result_keys('spectrum200') == ['spectrum200', 'spectrum200_num_real', 'spectrum200_num_gen']
    memo = metric_main.result_keys('memorization200')
    assert len(memo) == 11 and memo[0] == 'memorization200_nn_median' and memo[-2:] == ['memorization200_num_gen', 'memorization200_num_ref']

@pytest.mark.parametrize('key,metric,value,role,suffix', [
    ('fid10k_full', 'fid10k_full', 'fid10k_full', 'value', ''),
    ('fid10k_full_boot_p2.5', 'fid10k_full', 'fid10k_full', 'low', 'boot_p2.5'),
    ('fid10k_full_boot_p97.5', 'fid10k_full', 'fid10k_full', 'high', 'boot_p97.5'),
    ('kid200_full_boot_mean', 'kid200_full', 'kid200_full', 'mean', 'boot_mean'),
    ('kid200_full_boot_n', 'kid200_full', 'kid200_full', 'n', 'boot_n'),
    ('pr50k3_full_recall', 'pr50k3_full', 'pr50k3_full_recall', 'value', 'recall'),
    ('lpips_vgg_std', 'lpips_vgg', 'lpips_vgg_std', 'value', 'std'),
    ('lpips_std', 'lpips', 'lpips_std', 'value', 'std'),
    ('spectrum200_num_real', 'spectrum200', None, 'count', 'num_real'),
    ('memorization_near_copies', 'memorization', 'memorization_near_copies', 'value', 'near_copies'),
    ('eqt32_int', 'eqt32_int', 'eqt32_int', 'value', ''),
])
def test_split_result_key(key, metric, value, role, suffix):
    for given in (None, metric):
        found = metric_main.split_result_key(key, metric=given)
        assert (found.key, found.metric, found.value, found.role, found.suffix) == (key, metric, value, role, suffix)
    assert metric_main.is_interval_key(key) == (role in ('mean', 'low', 'high', 'n'))

def test_split_result_key_refuses_what_nothing_writes():
    # Spellings no writer produces (the old report accepted 18 of them) are not interval keys.
    for key in ['fid10k_full_ci_low', 'fid10k_full_lo', 'fid10k_full_p2.5', 'fid10k_full_bootstrap_mean',
                'eqt32_int_boot_mean', 'pr50k3_full_boot_mean', 'fid10k_full_num_gen', 'ssim_mean', 'nonsense']:
        assert metric_main.split_result_key(key) is None, key
        assert not metric_main.is_interval_key(key)
    assert metric_main.split_result_key('kid200_full', metric='fid200_full') is None
    assert metric_main.split_result_key('fid200_full', metric='not_a_metric') is None

def test_sized_name():
    assert metric_main.sized_name('fid', 2000, '_full') == 'fid2k_full'
    assert metric_main.sized_name('fid', 200, '_full') == 'fid200_full'
    assert metric_main.sized_name('spectrum', 256) == 'spectrum256'
    assert metric_main.sized_name('memorization', 8) == 'memorization8'
    with pytest.raises(MetricError, match='unknown metric'):
        metric_main.sized_name('pr', 300, '_full')

#----------------------------------------------------------------------------

def _calc(metric, tmp_path, **kwargs):
    reals = helpers.write_folder(tmp_path / 'reals', 12, seed=1)
    det = FakeDetector()
    return metric_main.calc_metric(metric, G=helpers.TinyGenerator(), dataset_kwargs=helpers.folder_kwargs(reals),
                                   detectors={'inception': det, 'vgg16': det}, **kwargs)

@pytest.mark.parametrize('metric,bootstrap', [('fid100_full', 4), ('kid100_full', 3), ('pr1k3_full', 0), ('kid100', 0)])
def test_calc_metric_writes_exactly_the_declared_keys(tmp_path, metric, bootstrap):
    result = _calc(metric, tmp_path, bootstrap=bootstrap)
    assert list(result.results) == metric_main.result_keys(metric, bootstrap=bootstrap > 0)
    for key in result.results:
        assert metric_main.split_result_key(key, metric=metric).metric == metric

def test_calc_metric_refuses_undeclared_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(metric_main, '_families', list(metric_main._families)) # Registration undone after the test.
    @metric_main.register_family('demo_family', rf'ssim_recon{metric_main.COUNT_PATTERN}', examples=['ssim_recon1k'], values=('', '_std'))
    def _ssim_recon(opts, match):
        return {match.group(0): 0.5, f'{match.group(0)}_std': 0.1, f'{match.group(0)}_extra': 1.0}
    assert metric_main.is_valid_metric('ssim_recon20') and 'ssim_recon1k' in metric_main.list_valid_metrics()
    assert metric_main.result_keys('ssim_recon20') == ['ssim_recon20', 'ssim_recon20_std']
    with pytest.raises(MetricError, match='ssim_recon20: its family "demo_family" wrote result keys it does not declare: ssim_recon20_extra'):
        _calc('ssim_recon20', tmp_path)

def test_family_on_an_encoder_and_the_dataset(tmp_path, monkeypatch):
    # The shape of the *_recon metrics: a network from opts.models applied to the real dataset, scored pairwise.
    monkeypatch.setattr(metric_main, '_families', list(metric_main._families))
    @metric_main.register_family('ssim_recon', rf'ssim_recon{metric_main.COUNT_PATTERN}', examples=['ssim_recon1k'],
                                 values=('', '_std', '_num'))
    def _ssim_recon(opts, match):
        E = opts.get_model('encoder', match.group(0))
        dataset = metric_utils.construct_dataset(opts.dataset_kwargs)
        num = min(metric_main.count_of(match, 1), len(dataset))
        values = []
        for images in metric_utils.iterate_dataset_images(opts, dataset, num, opts.batch_size):
            x = images.to(torch.float64) / 127.5 - 1
            values.append(paired.ssim(E(x), x))
        return paired_folders.summarize(match.group(0), torch.cat(values).numpy())
    identity = torch.nn.Identity()
    result = _calc('ssim_recon8', tmp_path, models={'encoder': identity}, batch_size=3)
    assert result.results.ssim_recon8 == pytest.approx(1.0, abs=1e-12) and result.results.ssim_recon8_num == 8
    blur = lambda x: torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert _calc('ssim_recon8', tmp_path, models={'encoder': blur}).results.ssim_recon8 < 0.999
    with pytest.raises(MetricError, match='ssim_recon8 needs the "encoder" network'):
        _calc('ssim_recon8', tmp_path)
    assert np.isfinite(result.total_time)

#----------------------------------------------------------------------------
