# Data pipeline speed: dataset_tool.py --fundus-crop on 1411x1411 JPEGs, the loader on a 512x512 zip,
# and phantom rendering. Prints one JSON object; numbers go to docs/benchmarks.md ("Data").
#
#   python bench/data.py --num=48 --workers=2

import json
import os
import subprocess
import sys
import tempfile
import time

import click
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def make_photos(folder, num, seed=0):
    # Perturbed copies of the scikit-image fundus photo: shift, small rotation, brightness, JPEG quality.
    import skimage.data
    base = Image.fromarray(skimage.data.retina())
    rng = np.random.default_rng(seed)
    for i in range(num):
        img = base.rotate(float(rng.uniform(-4, 4)), resample=Image.BILINEAR,
                          translate=(int(rng.integers(-30, 31)), int(rng.integers(-30, 31))))
        arr = np.asarray(img).astype(np.float32) * float(rng.uniform(0.85, 1.15))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(os.path.join(folder, f'photo{i:04d}.jpg'),
                                                                   quality=int(rng.integers(85, 96)))

def bench_tool(src, dest, workers):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, os.path.join(root, 'dataset_tool.py'), f'--source={src}', f'--dest={dest}',
           '--fundus-crop', '--resolution=512x512', f'--workers={workers}']
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0

def bench_loader(path, epochs, workers):
    import torch
    from training.dataset import ImageFolderDataset
    d = ImageFolderDataset(path, xflip=True)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for i in range(len(d)):
            d[i]
    plain = epochs * len(d) / (time.perf_counter() - t0)
    loader = torch.utils.data.DataLoader(d, batch_size=8, num_workers=workers, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    n = 0
    for _ in range(epochs):
        for x, _ in loader:
            n += x.shape[0]
    return plain, n / (time.perf_counter() - t0)

def bench_stages(photo, reps=5):
    # Median milliseconds per stage for one 1411x1411 JPEG, in this process (one core).
    from fundus.data import build
    from fundus.data import preprocess
    with open(photo, 'rb') as f:
        data = f.read()
    stages = dict(decode=[], detect_fov=[], crop_resize=[], encode_png=[])
    for _ in range(reps):
        t0 = time.perf_counter()
        arr, _ = build.decode(data, build.DEFAULT_MAX_PIXELS)
        t1 = time.perf_counter()
        fov = preprocess.detect_fov(arr)
        t2 = time.perf_counter()
        out = preprocess.crop_to_fov(arr, 512, fov=fov)
        t3 = time.perf_counter()
        build._encode_png(out, 'rgb')
        t4 = time.perf_counter()
        for k, a, b in (('decode', t0, t1), ('detect_fov', t1, t2), ('crop_resize', t2, t3), ('encode_png', t3, t4)):
            stages[k].append(b - a)
    return {k: round(1000 * float(np.median(v)), 1) for k, v in stages.items()}

def bench_phantom(res, reps):
    from fundus.data import phantom
    phantom.render(res, 4, 0)
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        phantom.render(res, 4, i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))

#----------------------------------------------------------------------------

@click.command()
@click.option('--num',     help='Number of 1411x1411 JPEG photos', type=click.IntRange(min=1), default=48, show_default=True)
@click.option('--workers', help='dataset_tool.py --workers and DataLoader workers', type=click.IntRange(min=0), default=2, show_default=True)
@click.option('--epochs',  help='Loader passes over the zip', type=click.IntRange(min=1), default=3, show_default=True)
def main(num, workers, epochs):
    """Measure the data pipeline and print the results as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'photos')
        os.makedirs(src)
        make_photos(src, num)
        dest = os.path.join(tmp, 'fundus-512.zip')
        tool_s = bench_tool(src, dest, workers)
        plain, loader = bench_loader(dest, epochs, workers)
        result = dict(
            photos=num, workers=workers, cpu_count=os.cpu_count(),
            tool_seconds=round(tool_s, 2), tool_images_per_s=round(num / tool_s, 2),
            loader_images_per_s_in_process=round(plain, 1), loader_images_per_s_dataloader=round(loader, 1),
            stage_ms=bench_stages(os.path.join(src, 'photo0000.jpg')),
            phantom_seconds={str(r): round(bench_phantom(r, 5), 4) for r in (64, 256, 512)},
            load_average=[round(x, 2) for x in os.getloadavg()],
        )
    print(json.dumps(result, indent=1))

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
