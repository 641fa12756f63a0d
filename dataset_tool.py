# Build a training dataset (an uncompressed-PNG zip or folder plus dataset.json) from a folder or zip of
# photographs, optionally cropping each fundus photo to its circular field of view and attaching grades
# from a public dataset's label file; or build a labelled zip of procedural phantom fundus images.
#
# Thin CLI over fundus.data.build (the library half): parse the options, call build_dataset, print the
# summary line. Every stop is one line "Error: <file or option>: <problem>" and a non-zero exit code.

import os

import click

from fundus.data import build
from fundus.data import labels as fundus_labels

#----------------------------------------------------------------------------

def _parse_resolution(ctx, param, value):
    try:
        return build.parse_resolution(value)
    except build.DatasetError as e:
        raise click.BadParameter(str(e).split(': ', 1)[1]) from None

@click.command(context_settings=dict(max_content_width=100, terminal_width=100))
@click.option('--source',             help='Folder (searched recursively) or zip of photos, or phantom:N for N procedural phantom fundus images', required=True, metavar='PATH')
@click.option('--dest',               help='Output folder or .zip (written to a temp name and renamed at the end)', required=True, metavar='PATH')
@click.option('--max-images',         help='Keep at most this many images (counted after skips)', type=click.IntRange(min=1), metavar='INT')
@click.option('--transform',          help='Crop before resizing (needs --resolution)', type=click.Choice(['center-crop', 'center-crop-wide']))
@click.option('--resolution',         help='Output resolution, e.g. 512x512 (power-of-two width)', metavar='WxH', callback=_parse_resolution)
@click.option('--resize-filter',      help='Resampling filter for resizing', type=click.Choice(['lanczos', 'box']), default='lanczos', show_default=True)
@click.option('--fundus-crop',        help='Crop the square around the circular field of view, black outside the circle (needs --resolution); photos without a FOV are skipped', is_flag=True)
@click.option('--labels',             help='Grade file of the photos (see --label-format)', type=click.Path(exists=True, dir_okay=False), metavar='FILE')
@click.option('--label-format',       help='Format of --labels; auto = guess from the header (never csv)', type=click.Choice(['auto'] + list(fundus_labels.LABEL_FORMATS)), default='auto', show_default=True)
@click.option('--grades',             help='Keep only these grades, e.g. 1 or 0,1', metavar='LIST')
@click.option('--include-ungradable', help='Keep photos graded ungradable (DDR grade 5) as class 5', is_flag=True)
@click.option('--channels',           help='Output channels: RGB, or grayscale (luminance)', type=click.Choice(['rgb', 'gray']), default='rgb', show_default=True)
@click.option('--min-size',           help='Skip photos whose crop source (FOV diameter with --fundus-crop, else the shorter side) is smaller than this; default: half the output width, or 8', type=click.IntRange(min=1), metavar='PX')
@click.option('--max-pixels',         help='Skip images with more pixels than this (decompression-bomb guard)', type=click.IntRange(min=1), default=build.DEFAULT_MAX_PIXELS, show_default=True, metavar='INT')
@click.option('--workers',            help='Worker processes', type=click.IntRange(min=1), default=1, show_default=True, metavar='INT')
@click.option('--overwrite',          help='Replace an existing destination (a folder only if it holds a dataset.json)', is_flag=True)
@click.option('--phantom-grades',     help='Grades drawn for phantom:N (uniformly)', default='0,1,2,3,4', show_default=True, metavar='LIST')
@click.option('--seed',               help='Seed of the phantom images', type=int, default=0, show_default=True, metavar='INT')
def main(source, dest, max_images, transform, resolution, resize_filter, fundus_crop, labels, label_format, grades,
         include_ungradable, channels, min_size, max_pixels, workers, overwrite, phantom_grades, seed):
    """Build a training dataset (uncompressed-PNG zip or folder with dataset.json) for train.py.

    \b
    Examples:
      # Fundus photos + EyePACS grades -> 512x512 circle-cropped zip, conditional on grade:
      python dataset_tool.py --source=~/eyepacs/train --dest=~/datasets/eyepacs-512.zip \\
          --fundus-crop --resolution=512x512 --labels=~/eyepacs/trainLabels.csv
      # Only referable DR (grades 2-4) from DDR, 4 worker processes:
      python dataset_tool.py --source=DDR/train --dest=ddr-ref.zip --fundus-crop --resolution=512x512 \\
          --labels=DDR/train.txt --label-format=ddr --grades=2,3,4 --workers=4
      # 1000 labelled phantom fundus images for a quick test:
      python dataset_tool.py --source=phantom:1000 --dest=phantom-256.zip --resolution=256x256

    Label formats: eyepacs (image,level), aptos (id_code,diagnosis), idrid (Image name,Retinopathy grade),
    ddr ("name grade" text; 5 = ungradable), messidor (Image name,Retinopathy grade; 0-3), odir (CSV with
    Left-Fundus, Right-Fundus and N,D,G,C,A,H,M,O: 8-element 0/1 labels), csv (header, then image,label).
    Images are matched to label rows by file name without folder and extension. The format is guessed
    from the header unless --label-format is given.

    The destination also holds dataset_report.json (counts kept and skipped per reason, and every skipped
    file with its reason) and, for phantoms, phantom_lesions.json (lesion counts per image). Rules for
    unreadable, 16-bit, grayscale, RGBA, CMYK, palette, non-square, tiny and huge images, label files,
    unsafe zips and symlinks: docs/data.md.
    """
    try:
        result = build.build_dataset(source, dest, max_images=max_images, transform=transform, resolution=resolution,
                                     resize_filter=resize_filter, fundus_crop=fundus_crop, labels=labels,
                                     label_format=label_format, grades=grades, include_ungradable=include_ungradable,
                                     channels=channels, min_size=min_size, max_pixels=max_pixels, workers=workers,
                                     overwrite=overwrite, phantom_grades=phantom_grades, seed=seed, progress=True)
    except build.DatasetError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        raise click.ClickException('interrupted; the destination was not written') from None
    except Exception as e: # A bug: still one line, and the destination is untouched (build cleans up).
        if os.environ.get('FUNDUS_DEBUG'):
            raise
        raise click.ClickException(f'internal error: {type(e).__name__}: {e} (set FUNDUS_DEBUG=1 for a traceback)') from None
    click.echo(result.summary(dest))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
