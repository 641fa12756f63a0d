# fundus.data.labels: one reader per public grade-file format, and the one-line errors for bad rows.

import pytest

from fundus.data import labels as L

#----------------------------------------------------------------------------

def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)

def test_eyepacs(tmp_path):
    p = _write(tmp_path, 'trainLabels.csv', 'image,level\n10_left,0\n10_right,4\n15_left,-1\n')
    t = L.read_labels(p, 'eyepacs')
    assert t.labels == {'10_left': 0, '10_right': 4, '15_left': None}
    assert t.unlabelled == {'15_left'} and t.lines['10_right'] == 3

def test_aptos(tmp_path):
    p = _write(tmp_path, 'train.csv', 'id_code,diagnosis\n000c1434d8d7,2\n001639a390f0,4\n')
    assert L.read_labels(p, 'aptos').labels == {'000c1434d8d7': 2, '001639a390f0': 4}

def test_idrid_with_trailing_columns_and_spaces(tmp_path):
    text = ('Image name,Retinopathy grade,Risk of macular edema ,,\n'
            'IDRiD_001,3,2,,\nIDRiD_002,0,0,,\n')
    t = L.read_labels(_write(tmp_path, 'idrid.csv', text), 'idrid')
    assert t.labels == {'IDRiD_001': 3, 'IDRiD_002': 0}

def test_ddr_text_with_ungradable(tmp_path):
    p = _write(tmp_path, 'train.txt', '007-0004-000.jpg 0\n007-0005-000.jpg 5\n\n007-0007-000.jpg 3\n')
    t = L.read_labels(p, 'ddr')
    assert t.labels == {'007-0004-000': 0, '007-0005-000': 5, '007-0007-000': 3}
    assert t.ungradable == {'007-0005-000'}

def test_messidor_semicolon_csv_and_range(tmp_path):
    p = _write(tmp_path, 'annotation.csv', 'Image name;Ophthalmologic department;Retinopathy grade;Risk of macular edema\n'
                                           '20051019_38557_0100_PP.tif;LaTIM;3;0\n')
    assert L.read_labels(p, 'messidor').labels == {'20051019_38557_0100_PP': 3}
    bad = _write(tmp_path, 'bad.csv', 'Image name,Retinopathy grade\nx.tif,4\n')
    with pytest.raises(L.LabelError, match=r'bad.csv:2: grade 4 is outside 0..3'):
        L.read_labels(bad, 'messidor')

def test_odir_patient_rows_label_both_eyes(tmp_path):
    text = ('ID,Patient Age,Patient Sex,Left-Fundus,Right-Fundus,Left-Diagnostic Keywords,Right-Diagnostic Keywords,N,D,G,C,A,H,M,O\n'
            '0,69,Female,0_left.jpg,0_right.jpg,cataract,normal fundus,0,0,0,1,0,0,0,0\n'
            '1,57,Male,1_left.jpg,1_right.jpg,normal fundus,normal fundus,1,0,0,0,0,0,0,0\n')
    t = L.read_labels(_write(tmp_path, 'odir.csv', text), 'odir')
    assert t.labels['0_left'] == [0, 0, 0, 1, 0, 0, 0, 0] == t.labels['0_right']
    assert t.labels['1_right'] == [1, 0, 0, 0, 0, 0, 0, 0] and t.is_vector()

def test_generic_csv(tmp_path):
    p = _write(tmp_path, 'mine.csv', 'file,cls\nsub/a.png,7\nb,0\n')
    assert L.read_labels(p, 'csv').labels == {'a': 7, 'b': 0}

#----------------------------------------------------------------------------
# Bad rows: one line naming file:line and the problem.

@pytest.mark.parametrize('fmt,text,message', [
    ('eyepacs', 'image,level\n10_left,0\n10_left,1\n',          r'x:3: duplicate row for image \'10_left\' \(first on line 2\)'),
    ('eyepacs', 'image,level\n10_left,two\n',                   r'x:2: grade \'two\' is not an integer'),
    ('eyepacs', 'image,level\n10_left,1.5\n',                   r'x:2: grade \'1.5\' is not an integer'),
    ('aptos',   'id_code,diagnosis\nabc\n',                     r'x:2: missing field'),
    ('aptos',   'id_code,diagnosis\nabc,\n',                    r'x:2: missing field'),
    ('aptos',   'id_code,diagnosis\nabc,1,9\n',                 r'x:2: more fields than the header'),
    ('aptos',   'image,level\nabc,1\n',                         r'x:1: header has no column \'id_code\''),
    ('aptos',   'id_code,diagnosis\nabc,7\n',                   r'x:2: grade 7 is outside 0..4'),
    ('ddr',     'a.jpg 1\nb.jpg\n',                             r'x:2: expected "name grade", got 1 fields'),
    ('ddr',     'a.jpg 6\n',                                    r'x:1: grade 6 is outside 0..5'),
    ('odir',    'filename,N,D,G,C,A,H,M,O\na.jpg,1,0,0,0,0,0,2,0\n', r'x:2: class M value 2 is not 0 or 1'),
    ('csv',     'image,label\na,-3\n',                          r'x:2: grade -3 is outside'),
    ('csv',     '',                                             r'x: label file is empty'),
])
def test_bad_rows_raise_one_line(tmp_path, fmt, text, message):
    p = _write(tmp_path, 'x', text)
    with pytest.raises(L.LabelError, match=message) as e:
        L.read_labels(p, fmt)
    assert '\n' not in str(e.value) and str(e.value).startswith(p)

def test_unknown_format_and_unreadable_file(tmp_path):
    with pytest.raises(L.LabelError, match='unknown label format'):
        L.read_labels(_write(tmp_path, 'a', 'x'), 'kaggle')
    with pytest.raises(L.LabelError, match='cannot read label file'):
        L.read_labels(str(tmp_path / 'missing.csv'), 'csv')
    (tmp_path / 'bin').write_bytes(b'\xff\xfe\x00bad')
    with pytest.raises(L.LabelError, match='not UTF-8'):
        L.read_labels(str(tmp_path / 'bin'), 'csv')

@pytest.mark.parametrize('text,fmt', [
    ('image,level\n10_left,0\n', 'eyepacs'),
    ('id_code,diagnosis\nabc,1\n', 'aptos'),
    ('Image name,Retinopathy grade,Risk of macular edema \nIDRiD_001,3,2\n', 'idrid'),
    ('Image name;Ophthalmologic department;Retinopathy grade\nx.tif;LaTIM;1\n', 'messidor'),
    ('ID,Left-Fundus,Right-Fundus,N,D,G,C,A,H,M,O\n', 'odir'),
    ('\n007-0004-000.jpg 0\n', 'ddr'),
])
def test_detect_format(tmp_path, text, fmt):
    p = _write(tmp_path, 'f', text)
    assert L.detect_format(p) == fmt
    assert L.read_labels(p, 'auto').format == fmt

def test_detect_format_refuses_to_guess(tmp_path):
    with pytest.raises(L.LabelError, match=r'g.csv:1: cannot tell the label format'):
        L.detect_format(_write(tmp_path, 'g.csv', 'file,cls\na,1\n'))

def test_image_key():
    assert L.image_key('train/10_left.jpeg') == '10_left'
    assert L.image_key('IDRiD_001') == 'IDRiD_001'
    assert L.image_key('C:\\data\\a.TIF') == 'a'
    assert L.image_key('a.b.c') == 'a.b.c'

#----------------------------------------------------------------------------
