# fundus/data/build.py, the library half of dataset_tool.py: a typed result, typed errors that name the
# option or file (never click exceptions), and nothing written when the build stops.

import json
import os
import zipfile

import pytest

from fundus.data import build

#----------------------------------------------------------------------------

def test_build_dataset_returns_a_typed_result_matching_the_written_report(tmp_path):
    dest = str(tmp_path / 'ph.zip')
    result = build.build_dataset('phantom:6', dest, resolution='16x16', progress=False)
    assert isinstance(result, build.BuildResult)
    assert (result.found, result.kept, result.resolution) == (6, 6, (16, 16))
    with zipfile.ZipFile(dest) as z:
        report = json.loads(z.read('dataset_report.json'))
        assert len(json.loads(z.read('dataset.json'))['labels']) == 6
    assert report['kept'] == result.kept and result.summary() == f'{dest}: kept 6 of 6 images at 16x16'
    assert [f for f in os.listdir(tmp_path) if '.tmp-' in f] == []

@pytest.mark.parametrize('kwargs, message', [
    (dict(source='phantom:2', resolution='15x15'), '--resolution: width 15 must be a power of two'),
    (dict(source='phantom:2', fundus_crop=True, transform='center-crop'), '--transform and --fundus-crop exclude each other'),
    (dict(source='phantom:0'), '--source=phantom:0: needs at least one image'),
    (dict(source='phantom:2', phantom_grades='7'), '--phantom-grades=7: grades must be 0..4'),
    (dict(source='no/such/folder'), 'no/such/folder: source not found'),
])
def test_bad_options_raise_dataset_error_naming_the_option(tmp_path, kwargs, message):
    dest = tmp_path / 'out.zip'
    with pytest.raises(build.DatasetError) as info:
        build.build_dataset(dest=str(dest), progress=False, **kwargs)
    assert message in str(info.value) and '\n' not in str(info.value)
    assert not dest.exists()

def test_existing_destination_is_kept_without_overwrite(tmp_path):
    dest = tmp_path / 'out.zip'
    dest.write_bytes(b'old')
    with pytest.raises(build.DatasetError, match='destination exists; pass --overwrite'):
        build.build_dataset('phantom:2', str(dest), resolution=(16, 16), progress=False)
    assert dest.read_bytes() == b'old'
