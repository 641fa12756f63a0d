# Procedural fundus photographs with known diabetic-retinopathy (DR) lesions, for tests and the demo.
#
# A phantom is laid out in resolution-free coordinates: u, v in [-1, 1] across the image, the field of
# view (FOV) a circle of radius FOV_RADIUS around the centre. The anatomy (optic disc, macula, a vessel
# tree of arteries and veins leaving the disc) and the lesions are drawn from one random stream, so the
# same seed gives the same eye at every resolution; only the fine grain noise depends on the resolution.
# Rendering draws vessels and lesions into supersampled 8-bit coverage maps with PIL, box-reduces them
# and composites them multiplicatively over an illuminated orange-red background.
#
# Lesion counts follow a simplified ICDR scale (grade: what is present):
#   0 none; 1 microaneurysms only; 2 microaneurysms + haemorrhages, exudates, maybe cotton-wool spots;
#   3 many haemorrhages (severe NPDR) + more exudates and cotton-wool spots; 4 as 3 + neovascularisation
#   near the disc (NVD).

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#----------------------------------------------------------------------------

FOV_RADIUS = 0.96
LESION_TYPES = ('microaneurysms', 'haemorrhages', 'hard_exudates', 'cotton_wool_spots', 'neovascularisation')
LESION_KINDS = ('microaneurysm', 'haemorrhage', 'hard_exudate', 'cotton_wool_spot', 'neovascularisation') # 'type' of one lesion record.

# Inclusive count ranges per grade; the ground truth of every phantom lies inside its row.
LESION_RANGES = {
    0: dict(microaneurysms=(0, 0),   haemorrhages=(0, 0),   hard_exudates=(0, 0),   cotton_wool_spots=(0, 0), neovascularisation=(0, 0)),
    1: dict(microaneurysms=(1, 6),   haemorrhages=(0, 0),   hard_exudates=(0, 0),   cotton_wool_spots=(0, 0), neovascularisation=(0, 0)),
    2: dict(microaneurysms=(4, 15),  haemorrhages=(2, 8),   hard_exudates=(0, 12),  cotton_wool_spots=(0, 2), neovascularisation=(0, 0)),
    3: dict(microaneurysms=(10, 25), haemorrhages=(20, 36), hard_exudates=(6, 24),  cotton_wool_spots=(2, 5), neovascularisation=(0, 0)),
    4: dict(microaneurysms=(10, 25), haemorrhages=(20, 36), hard_exudates=(6, 24),  cotton_wool_spots=(2, 5), neovascularisation=(1, 3)),
}

# Colour factors multiplied onto the background where a structure covers it (R, G, B).
_VEIN_FACTOR     = np.array([0.50, 0.26, 0.34], dtype=np.float32)
_ARTERY_FACTOR   = np.array([0.74, 0.50, 0.56], dtype=np.float32)
_HAEM_FACTOR     = np.array([0.56, 0.24, 0.30], dtype=np.float32)
_NV_FACTOR       = np.array([0.70, 0.40, 0.45], dtype=np.float32)
_EXUDATE_COLOR   = np.array([252, 232, 140], dtype=np.float32)
_CWS_COLOR       = np.array([242, 226, 205], dtype=np.float32)

@dataclasses.dataclass
class _Vessel:
    points: list        # [(u, v), ...] polyline in layout coordinates.
    widths: list        # Width (layout units) at each point.
    kind:   str         # 'artery' or 'vein'.

#----------------------------------------------------------------------------
# Random streams.

def _make_rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2 ** 31 - 1))
    return np.random.default_rng(int(seed))

#----------------------------------------------------------------------------
# Layout.

def _layout_eye(rng):
    # Choose the eye, the disc and the macula.
    eye = 'left' if rng.random() < 0.5 else 'right'
    side = -1.0 if eye == 'left' else 1.0       # Disc side: left eye -> disc on the left of the image.
    disc = (side * rng.uniform(0.38, 0.46), rng.uniform(-0.06, 0.04))
    disc_r = rng.uniform(0.085, 0.105)
    macula = (disc[0] - side * rng.uniform(0.44, 0.52), disc[1] + rng.uniform(0.02, 0.07))
    return eye, side, disc, disc_r, macula

def _inside(p, margin=0.0):
    return p[0] * p[0] + p[1] * p[1] < (FOV_RADIUS - margin) ** 2

def _wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi

def _grow_vessel(rng, start, heading, target, width, kind, depth, out, macula, orbit=None):
    # Grow one vessel by small steps; the heading relaxes toward a target with noise, the width tapers,
    # and side branches start now and then (recursively, up to depth 3). With orbit = (R, sigma, sweep)
    # the target is the tangent of a circle of radius R around the macula (sigma = turning sense), which
    # draws the temporal arcades; after `sweep` radians around the macula the vessel runs free.
    pts, wid = [start], [width]
    p, h, w, turn_rate = start, heading, width, 0.0
    step = 0.016
    phi0 = math.atan2(p[1] - macula[1], p[0] - macula[0])
    while w > 0.0022 and _inside(p, 0.01) and len(pts) < 140:
        if orbit is not None:
            R, sigma, sweep = orbit
            phi = math.atan2(p[1] - macula[1], p[0] - macula[0])
            if abs(_wrap(phi - phi0)) > sweep:
                orbit, target = None, h
            else:
                r = math.hypot(p[0] - macula[0], p[1] - macula[1])
                target = h + _wrap(phi + sigma * math.pi / 2 + sigma * max(-0.6, min(0.6, 5 * (r - R))) - h)
        # Tortuosity: a slowly varying turn rate on top of the pull toward the target heading.
        turn_rate = 0.7 * turn_rate + rng.normal(0, 0.05)
        h += (0.25 if orbit is not None else 0.10) * _wrap(target - h) + turn_rate
        p = (p[0] + step * math.cos(h), p[1] + step * math.sin(h))
        # Keep vessels out of the fovea.
        if math.hypot(p[0] - macula[0], p[1] - macula[1]) < 0.07:
            break
        w *= 0.992
        pts.append(p)
        wid.append(w)
        if depth < 3 and w > 0.006 and len(pts) > 4 and rng.random() < 0.055:
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.1)
            child_h = h + turn
            _grow_vessel(rng, p, child_h, child_h + 0.3 * turn, w * rng.uniform(0.45, 0.7), kind, depth + 1, out, macula)
            w *= 0.92
    out.append(_Vessel(points=pts, widths=wid, kind=kind))

def _layout_vessels(rng, side, disc, disc_r, macula):
    # Four arcades (superior/inferior x temporal/nasal), each an artery and a vein. Headings are angles in
    # image coordinates (v grows downward); temporal is toward the macula.
    temporal = 0.0 if side < 0 else math.pi
    r0 = math.hypot(disc[0] - macula[0], disc[1] - macula[1])
    vessels = []
    for kind, base_w in (('vein', 0.021), ('artery', 0.015)):
        spread = 1.0 if kind == 'vein' else 0.84
        for vert in (-1.0, 1.0):
            # Temporal arcade: leaves the disc vertically and circles the macula.
            sigma = side * vert
            start = (disc[0] + rng.normal(0, 0.12) * disc_r, disc[1] + vert * rng.uniform(0.0, 0.2) * disc_r)
            h0 = vert * math.pi / 2 + rng.normal(0, 0.1)
            orbit = (r0 * spread * rng.uniform(0.93, 1.0), sigma, rng.uniform(1.7, 2.2))
            _grow_vessel(rng, start, h0, h0, base_w * rng.uniform(0.9, 1.1), kind, 0, vessels, macula, orbit)
            # Nasal branch: thinner, heads away from the macula.
            nasal = temporal + math.pi
            hn = nasal + side * vert * (0.8 + (0.15 if kind == 'vein' else -0.15) + rng.normal(0, 0.15))
            tn = nasal + side * vert * 0.3
            _grow_vessel(rng, start, hn, tn, 0.75 * base_w * rng.uniform(0.9, 1.1), kind, 1, vessels, macula)
    return vessels

def _random_point(rng, center, rmin, rmax, avoid, avoid_r):
    # A point at distance [rmin, rmax] from `center`, inside the FOV and away from `avoid`.
    for _ in range(100):
        a = rng.uniform(0, 2 * math.pi)
        d = math.sqrt(rng.uniform(rmin * rmin, rmax * rmax))
        p = (center[0] + d * math.cos(a), center[1] + d * math.sin(a))
        if _inside(p, 0.08) and math.hypot(p[0] - avoid[0], p[1] - avoid[1]) > avoid_r:
            return p
    return center

def _draw_counts(rng, grade):
    return {name: int(rng.integers(lo, hi + 1)) for name, (lo, hi) in LESION_RANGES[grade].items()}

def _layout_lesions(rng, grade, disc, disc_r, macula):
    counts = _draw_counts(rng, grade)
    lesions = []
    avoid_r = disc_r * 1.3
    for _ in range(counts['microaneurysms']):
        p = _random_point(rng, macula, 0.06, 0.55, disc, avoid_r)
        lesions.append(dict(type='microaneurysm', u=p[0], v=p[1], r=float(rng.uniform(0.004, 0.007))))
    for _ in range(counts['haemorrhages']):
        p = _random_point(rng, macula, 0.08, 0.8, disc, avoid_r)
        r = float(rng.uniform(0.009, 0.026))
        # Blots are unions of a few overlapping discs.
        parts = [(p[0] + rng.normal(0, 0.4 * r), p[1] + rng.normal(0, 0.4 * r), r * rng.uniform(0.6, 1.0)) for _ in range(int(rng.integers(1, 4)))]
        lesions.append(dict(type='haemorrhage', u=p[0], v=p[1], r=r, parts=[[float(a) for a in q] for q in parts]))
    n_ex = counts['hard_exudates']
    clusters = [_random_point(rng, macula, 0.08, 0.35, disc, avoid_r) for _ in range(max(1, n_ex // 5))]
    for i in range(n_ex):
        c = clusters[i % len(clusters)]
        p = (c[0] + rng.normal(0, 0.035), c[1] + rng.normal(0, 0.035))
        lesions.append(dict(type='hard_exudate', u=p[0], v=p[1], r=float(rng.uniform(0.004, 0.011))))
    for _ in range(counts['cotton_wool_spots']):
        p = _random_point(rng, disc, 0.2, 0.55, macula, 0.1)
        lesions.append(dict(type='cotton_wool_spot', u=p[0], v=p[1], r=float(rng.uniform(0.022, 0.038)), angle=float(rng.uniform(0, math.pi))))
    for _ in range(counts['neovascularisation']):
        p = _random_point(rng, disc, 0.3 * disc_r, 1.6 * disc_r, (9.0, 9.0), 0.0)
        walk = [p]
        h = rng.uniform(0, 2 * math.pi)
        for _ in range(28):
            h += rng.normal(0, 0.9)
            walk.append((walk[-1][0] + 0.008 * math.cos(h), walk[-1][1] + 0.008 * math.sin(h)))
        lesions.append(dict(type='neovascularisation', u=p[0], v=p[1], r=0.05, path=[[float(a), float(b)] for a, b in walk]))
    return counts, lesions

#----------------------------------------------------------------------------
# Rendering helpers.

class _Canvas:
    # An 8-bit coverage map drawn at `ss` times the output resolution.
    def __init__(self, res, ss):
        self.res, self.ss = res, ss
        self.img = Image.new('L', (res * ss, res * ss), 0)
        self.draw = ImageDraw.Draw(self.img)
        self.used = False

    def xy(self, p):
        n = self.res * self.ss
        return ((p[0] + 1) * 0.5 * n, (p[1] + 1) * 0.5 * n)

    def scale(self, r):
        return r * 0.5 * self.res * self.ss

    def disc(self, p, r, value=255):
        self.used = True
        x, y = self.xy(p)
        s = max(self.scale(r), 0.5)
        self.draw.ellipse([x - s, y - s, x + s, y + s], fill=value)

    def line(self, p, q, w, value=255):
        self.used = True
        width = max(1, int(round(self.scale(w))))
        self.draw.line([self.xy(p), self.xy(q)], fill=value, width=width)
        if width > 2: # Round joints, as wide as the line.
            x, y = self.xy(q)
            c = (width - 1) / 2
            self.draw.ellipse([x - c, y - c, x + c, y + c], fill=value)

    def coverage(self, blur=0.0):
        if not self.used:
            return np.zeros((self.res, self.res), dtype=np.float32)
        img = self.img
        if self.scale(blur) >= 0.5:
            img = img.filter(ImageFilter.GaussianBlur(self.scale(blur)))
        if self.ss > 1:
            img = img.reduce(self.ss)
        return np.asarray(img, dtype=np.float32) * (1 / 255)

def _supersampling(res):
    return 2 if res >= 256 else 4

def _smooth_noise(rng, cells, res):
    # Low-frequency noise: a cells x cells normal grid, bicubic upsampled to res x res, roughly unit std.
    grid = rng.normal(0, 1, size=(cells, cells)).astype(np.float32)
    img = Image.fromarray(grid, mode='F').resize((res, res), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)

def _coords(res):
    c = (np.arange(res, dtype=np.float32) + 0.5) / res * 2 - 1
    return c[np.newaxis, :], c[:, np.newaxis]         # u [1, W], v [H, 1]

def _background(rng, res, disc, disc_r, macula):
    u, v = _coords(res)
    r2 = u * u + v * v
    base = np.array([rng.uniform(196, 222), rng.uniform(78, 100), rng.uniform(34, 52)], dtype=np.float32)
    # Illumination: bright centre, falloff toward the FOV edge, a glow around the disc.
    light = (1 - 0.30 * r2 - 0.25 * r2 * r2)
    dd2 = (u - disc[0]) ** 2 + (v - disc[1]) ** 2
    light = light + 0.12 * np.exp(-dd2 / (2 * (2.2 * disc_r) ** 2))
    # Choroidal texture at two scales.
    tex = 1 + 0.05 * _smooth_noise(rng, 6, res) + 0.025 * _smooth_noise(rng, 24, res)
    img = base[np.newaxis, np.newaxis, :] * (light * tex)[:, :, np.newaxis]
    # Macula: a darker, browner patch with a small dark fovea.
    dm2 = (u - macula[0]) ** 2 + (v - macula[1]) ** 2
    mac = np.exp(-dm2 / (2 * 0.11 ** 2))[:, :, np.newaxis]
    fov = np.exp(-dm2 / (2 * 0.025 ** 2))[:, :, np.newaxis]
    img = img * (1 - mac * np.array([0.22, 0.38, 0.30], dtype=np.float32)) * (1 - fov * np.array([0.15, 0.25, 0.2], dtype=np.float32))
    return img

def _paint_disc(img, res, disc, disc_r, side):
    u, v = _coords(res)
    px = 2.0 / res
    # Slightly taller than wide, soft edge; a paler cup displaced toward the macula.
    d = np.sqrt(((u - disc[0]) / 0.92) ** 2 + ((v - disc[1]) / 1.05) ** 2)
    edge = np.clip((disc_r - d) / max(0.18 * disc_r, px) + 0.5, 0, 1)[:, :, np.newaxis]
    rim = np.array([238, 168, 112], dtype=np.float32)
    img = img * (1 - edge) + rim * edge
    cup_c = (disc[0] - side * 0.15 * disc_r, disc[1])
    dc = np.sqrt((u - cup_c[0]) ** 2 + (v - cup_c[1]) ** 2)
    cup = np.clip(1 - dc / (0.55 * disc_r), 0, 1)[:, :, np.newaxis] ** 0.8
    cup_color = np.array([252, 228, 185], dtype=np.float32)
    return img * (1 - cup) + cup_color * cup

def _multiply(img, cov, factor, opacity=1.0):
    a = (cov * opacity)[:, :, np.newaxis]
    return img * (1 - a * (1 - factor))

def _over(img, cov, color, opacity=1.0):
    a = (cov * opacity)[:, :, np.newaxis]
    return img * (1 - a) + color * a

#----------------------------------------------------------------------------

def _draw_vessels(vessels, res, ss):
    # Thin segments first, so that where branches join the thicker vessel stays on top.
    canvases = {'artery': _Canvas(res, ss), 'vein': _Canvas(res, ss)}
    segs = []
    for ves in vessels:
        for i in range(1, len(ves.points)):
            segs.append((ves.widths[i], ves.kind, ves.points[i - 1], ves.points[i]))
    segs.sort(key=lambda s: s[0])
    for w, kind, p, q in segs:
        value = int(round(255 * min(1.0, 0.45 + 0.55 * w / 0.015)))
        canvases[kind].line(p, q, w, value)
    # A slight blur hides the width steps of the integer line widths.
    return canvases['artery'].coverage(blur=0.0015), canvases['vein'].coverage(blur=0.0015)

def _draw_lesions(lesions, res, ss):
    red, ex, cws, nv = (_Canvas(res, ss) for _ in range(4))
    for les in lesions:
        t = les['type']
        if t == 'microaneurysm':
            red.disc((les['u'], les['v']), les['r'])
        elif t == 'haemorrhage':
            for pu, pv, pr in les['parts']:
                red.disc((pu, pv), pr)
        elif t == 'hard_exudate':
            ex.disc((les['u'], les['v']), les['r'])
        elif t == 'cotton_wool_spot':
            cws.disc((les['u'], les['v']), les['r'])
        elif t == 'neovascularisation':
            path = les['path']
            for a, b in zip(path[:-1], path[1:]):
                nv.line(a, b, 0.0028)
    return red.coverage(blur=0.0015), ex.coverage(blur=0.002), cws.coverage(blur=0.014), nv.coverage()

def render(resolution=256, grade=0, seed=0):
    """Render one phantom fundus photograph.

    Args:
        resolution: output side in pixels (any size >= 8).
        grade:      DR grade 0..4; sets which lesions appear and how many (LESION_RANGES).
        seed:       int, numpy Generator or RandomState; the same seed gives the same eye at every
                    resolution.

    Returns:
        (img, info): img is uint8 [resolution, resolution, 3]; info is a JSON-serialisable dict with
        'grade', 'eye', 'disc' (u, v, r), 'macula' (u, v), 'counts' (per lesion type) and 'lesions'
        (type and position in layout coordinates, u, v in [-1, 1]).
    """
    if int(grade) not in LESION_RANGES:
        raise ValueError(f'grade must be 0..4, got {grade!r}')
    if int(resolution) < 8:
        raise ValueError(f'resolution must be at least 8, got {resolution!r}')
    grade, res = int(grade), int(resolution)
    rng = _make_rng(seed)

    # Lay out the eye in resolution-free coordinates; the noise stream is split off first.
    noise_rng = np.random.default_rng(int(rng.integers(0, 2 ** 63 - 1)))
    eye, side, disc, disc_r, macula = _layout_eye(rng)
    vessels = _layout_vessels(rng, side, disc, disc_r, macula)
    counts, lesions = _layout_lesions(rng, grade, disc, disc_r, macula)

    # Paint background, disc, vessels and lesions.
    ss = _supersampling(res)
    img = _background(noise_rng, res, disc, disc_r, macula)
    img = _paint_disc(img, res, disc, disc_r, side)
    artery, vein = _draw_vessels(vessels, res, ss)
    img = _multiply(img, vein, _VEIN_FACTOR)
    img = _multiply(img, artery, _ARTERY_FACTOR)
    red, ex, cws, nv = _draw_lesions(lesions, res, ss)
    img = _multiply(img, nv, _NV_FACTOR, 0.9)
    img = _multiply(img, red, _HAEM_FACTOR, 0.85)
    img = _over(img, ex, _EXUDATE_COLOR, 0.9)
    img = _over(img, np.clip(cws * 1.4, 0, 1), _CWS_COLOR, 0.6)

    # Sensor grain, then the circular FOV on black.
    img = img * (1 + 0.015 * noise_rng.normal(0, 1, size=(res, res, 1)).astype(np.float32))
    u, v = _coords(res)
    r = np.sqrt(u * u + v * v)
    fov = np.clip((FOV_RADIUS - r) * res / 2 + 0.5, 0, 1)[:, :, np.newaxis]
    img = np.clip(np.round(img * fov), 0, 255).astype(np.uint8)

    info = dict(grade=grade, eye=eye, disc=[float(disc[0]), float(disc[1]), float(disc_r)],
                macula=[float(macula[0]), float(macula[1])], counts=counts,
                lesions=[{k: val for k, val in les.items() if k in ('type', 'u', 'v', 'r')} for les in lesions])
    return img, info

#----------------------------------------------------------------------------

def grade_for_index(idx, seed=0, grades=(0, 1, 2, 3, 4)):
    """The grade of phantom number `idx` in a dataset: drawn from `grades` with a per-index stream."""
    rng = np.random.default_rng([int(seed), int(idx), 1])
    return int(grades[int(rng.integers(0, len(grades)))])

def phantom_seed(idx, seed=0):
    """The render seed of phantom number `idx` in a dataset built with `seed`."""
    return np.random.default_rng([int(seed), int(idx), 2])

def make_grid(resolution=128, grades=(0, 1, 2, 3, 4), seeds=(0, 1, 2, 3), label=True, gap=2):
    """A grid image: one row per grade, one column per seed; the grade is written in the left margin."""
    margin = 52 if label else 0
    step = resolution + gap
    grid = Image.new('RGB', (margin + len(seeds) * step - gap, len(grades) * step - gap), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, g in enumerate(grades):
        for j, s in enumerate(seeds):
            img, _ = render(resolution, g, s)
            grid.paste(Image.fromarray(img), (margin + j * step, i * step))
        if label:
            draw.text((4, i * step + resolution // 2 - 6), f'grade {g}', fill=(0, 0, 0))
    return grid

#----------------------------------------------------------------------------
