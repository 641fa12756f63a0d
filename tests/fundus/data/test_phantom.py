# fundus.data.phantom: determinism, lesion ground truth against the grade rules, any resolution, and the
# picture itself (FOV geometry found by the independent FOV detector, colours, lesions where recorded).

import numpy as np
import pytest
from PIL import Image

from fundus.data import phantom as P
from fundus.data import preprocess

#----------------------------------------------------------------------------

def test_same_seed_same_image_other_seed_other_image():
    a, ia = P.render(64, 2, 7)
    b, ib = P.render(64, 2, 7)
    c, _ = P.render(64, 2, 8)
    assert np.array_equal(a, b) and ia == ib
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 2
    g, ig = P.render(64, 2, np.random.default_rng(7))
    assert np.array_equal(a, g) and ia == ig

def test_global_numpy_rng_is_not_used():
    np.random.seed(1)
    a, _ = P.render(32, 3, 5)
    np.random.seed(2)
    b, _ = P.render(32, 3, 5)
    assert np.array_equal(a, b)

@pytest.mark.parametrize('grade', [0, 1, 2, 3, 4])
def test_lesion_counts_follow_grade_rules(grade):
    for seed in range(6):
        _, info = P.render(16, grade, seed)
        c = info['counts']
        assert info['grade'] == grade and set(c) == set(P.LESION_TYPES)
        for name, (lo, hi) in P.LESION_RANGES[grade].items():
            assert lo <= c[name] <= hi
        # ICDR-style rules, stated independently of the table.
        total = sum(c.values())
        if grade == 0:
            assert total == 0
        if grade == 1:
            assert c['microaneurysms'] >= 1 and total == c['microaneurysms']
        if grade >= 2:
            assert c['microaneurysms'] >= 1 and c['haemorrhages'] >= 1
        if grade == 3:
            assert c['haemorrhages'] >= 20
        assert (c['neovascularisation'] >= 1) == (grade == 4)
        # The lesion list agrees with the counts.
        kinds = [l['type'] for l in info['lesions']]
        assert kinds.count('microaneurysm') == c['microaneurysms']
        assert kinds.count('haemorrhage') == c['haemorrhages']
        assert kinds.count('hard_exudate') == c['hard_exudates']
        assert kinds.count('cotton_wool_spot') == c['cotton_wool_spots']
        assert kinds.count('neovascularisation') == c['neovascularisation']

@pytest.mark.parametrize('res', [8, 37, 64, 100])
def test_any_resolution(res):
    img, _ = P.render(res, 3, 1)
    assert img.shape == (res, res, 3) and img.dtype == np.uint8
    assert img[0, 0].max() == 0 and img[-1, -1].max() == 0

def test_same_anatomy_at_every_resolution():
    big, info_big = P.render(256, 2, 3)
    small, info_small = P.render(64, 2, 3)
    assert info_big == info_small
    down = np.asarray(Image.fromarray(big).resize((64, 64), Image.BOX)).astype(int)
    other, _ = P.render(64, 2, 4)
    same = np.abs(down - small.astype(int)).mean()
    assert same < 6 and same < 0.5 * np.abs(down - other.astype(int)).mean()

def test_fov_found_by_independent_detector():
    img, _ = P.render(200, 1, 2)
    fov = preprocess.detect_fov(img)
    assert abs(fov.cx - 99.5) < 1 and abs(fov.cy - 99.5) < 1 and abs(fov.radius - P.FOV_RADIUS * 100) < 1

def test_looks_orange_red_with_bright_disc_and_dark_macula():
    img, info = P.render(128, 0, 0)
    f = img.astype(float)
    yy, xx = np.mgrid[:128, :128]
    u, v = (xx + 0.5) / 64 - 1, (yy + 0.5) / 64 - 1
    inside = u ** 2 + v ** 2 < 0.8
    r, g, b = (f[..., i][inside].mean() for i in range(3))
    assert 120 < r < 240 and r > 1.6 * g and g > b
    du, dv, dr = info['disc']
    mu, mv = info['macula']
    disc = f[(u - du) ** 2 + (v - dv) ** 2 < (0.5 * dr) ** 2].mean()
    macula = f[(u - mu) ** 2 + (v - mv) ** 2 < 0.03 ** 2].mean()
    assert disc > f[inside].mean() + 40
    assert macula < f[inside].mean() - 10

def test_lesions_appear_where_recorded():
    # Same seed, so the same eye: grade 3 differs from grade 0 only by lesions.
    clean, _ = P.render(256, 0, 11)
    sick, info = P.render(256, 3, 11)
    clean, sick = clean.astype(int), sick.astype(int)

    def px(l):
        return int((l['v'] + 1) * 128), int((l['u'] + 1) * 128)

    haem = [px(l) for l in info['lesions'] if l['type'] == 'haemorrhage']
    darker = [sick[y, x, 0] < clean[y, x, 0] - 20 for y, x in haem]
    assert np.mean(darker) > 0.9
    ex = [px(l) for l in info['lesions'] if l['type'] == 'hard_exudate']
    brighter = [sick[y, x, 1] > clean[y, x, 1] + 20 for y, x in ex]
    assert np.mean(brighter) > 0.6
    # Away from every lesion the two pictures agree.
    mask = np.ones((256, 256), bool)
    for l in info['lesions']:
        y, x = px(l)
        mask[max(0, y - 20):y + 20, max(0, x - 20):x + 20] = False
    assert np.abs(sick - clean)[mask].max() <= 1

def test_dataset_helpers_are_deterministic():
    grades = [P.grade_for_index(i, seed=3) for i in range(50)]
    assert grades == [P.grade_for_index(i, seed=3) for i in range(50)]
    assert set(grades) == {0, 1, 2, 3, 4}
    assert all(P.grade_for_index(i, 0, (1, 3)) in (1, 3) for i in range(20))

def test_bad_arguments():
    with pytest.raises(ValueError, match='grade must be 0..4'):
        P.render(32, 5, 0)
    with pytest.raises(ValueError, match='resolution must be at least 8'):
        P.render(4, 0, 0)

#----------------------------------------------------------------------------
