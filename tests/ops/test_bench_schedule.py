# bench/ops.py derives the stylegan3-t layer shapes from the schedule formulas; check them against the
# facts table (stylegan3.md section 4.4, 256x256) so that the benchmark times the real layers.

import pytest

from tests.support.bench import load_bench

def _load_bench():
    return load_bench('ops')

@pytest.mark.parametrize('idx,name,in_size,up,down,padding,taps', [
    (0, 'L0_36_512', 38, 2, 2, [9, 8, 9, 8], (12, 12)),
    (3, 'L3_52_512', 38, 4, 2, [-6, -9, -6, -9], (24, 12)),
    (9, 'L9_148_362', 150, 2, 2, [9, 8, 9, 8], (12, 12)),
    (13, 'L13_256_128', 278, 2, 2, [-11, -12, -11, -12], (12, 12)),
    (14, 'L14_256_3', 256, 1, 1, [0, 0, 0, 0], (None, None)),
])
def test_bench_sg3_schedule_matches_facts_table(idx, name, in_size, up, down, padding, taps):
    layer = _load_bench().sg3_layers(256)[idx]
    assert (layer['name'], layer['in_size'], layer['up'], layer['down'], layer['padding']) == (name, in_size, up, down, padding)
    assert tuple(None if f is None else len(f) for f in (layer['fu'], layer['fd'])) == taps
