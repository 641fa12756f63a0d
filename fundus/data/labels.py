# Readers for the grade files of public fundus datasets.
#
# Every reader returns a LabelTable: image key -> label, where the key is the image name without folder
# and without an image extension ('10_left', 'IDRiD_001', '007-0004-000'), and the label is an int grade
# or, for ODIR, a list of 8 ints (N, D, G, C, A, H, M, O). A malformed file stops with LabelError, whose
# message is one line '<file>:<line>: <problem>'.

import csv
import dataclasses
import io
import os

#----------------------------------------------------------------------------

LABEL_FORMATS = ('eyepacs', 'aptos', 'idrid', 'ddr', 'messidor', 'odir', 'csv')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp')
ODIR_CLASSES = ('N', 'D', 'G', 'C', 'A', 'H', 'M', 'O')
DDR_UNGRADABLE = 5          # DDR marks ungradable photos with grade 5.
EYEPACS_UNLABELLED = -1     # EyePACS (TFDS export) marks its unlabelled test images with -1.

class LabelError(ValueError):
    """A label file that cannot be used; the message names the file and line."""

@dataclasses.dataclass
class LabelTable:
    path:       str                 # The file the labels came from.
    format:     str                 # One of LABEL_FORMATS.
    labels:     dict                # key -> int grade or list of ints.
    lines:      dict                # key -> line number in the file (1-based), for messages.
    ungradable: set                 # Keys whose grade means "ungradable" (DDR 5).
    unlabelled: set                 # Keys listed without a usable label (EyePACS -1).

    def is_vector(self):
        return self.format == 'odir'

#----------------------------------------------------------------------------

def image_key(name):
    """'train/10_left.jpeg' -> '10_left'; names without an image extension are kept whole."""
    base = os.path.basename(str(name).replace('\\', '/')).strip()
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in IMAGE_EXTENSIONS else base

def _read_text(path):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise LabelError(f'{path}: cannot read label file ({e.strerror or e})') from None
    try:
        return data.decode('utf-8-sig')
    except UnicodeDecodeError:
        raise LabelError(f'{path}: label file is not UTF-8 text') from None

def _parse_int(path, line, text, what):
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        raise LabelError(f'{path}:{line}: {what} {t!r} is not an integer') from None
    if not value.is_integer():
        raise LabelError(f'{path}:{line}: {what} {t!r} is not an integer')
    return int(value)

def _csv_rows(path, text):
    # Detect the delimiter from the header line; yield (line_number, fields) for non-empty lines.
    header = text.splitlines()[0] if text.strip() else ''
    delim = max([',', ';', '\t'], key=header.count) if header else ','
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    for fields in reader:
        if any(f.strip() for f in fields):
            yield reader.line_num, [f.strip() for f in fields]

def _find_column(path, header, names):
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    raise LabelError(f'{path}:1: header has no column {names[0]!r} (found: {", ".join(header)})')

#----------------------------------------------------------------------------

def _new_table(path, fmt):
    return LabelTable(path=str(path), format=fmt, labels={}, lines={}, ungradable=set(), unlabelled=set())

def _add(table, line, name, label):
    key = image_key(name)
    if not key:
        raise LabelError(f'{table.path}:{line}: empty image name')
    if key in table.lines:
        raise LabelError(f'{table.path}:{line}: duplicate row for image {key!r} (first on line {table.lines[key]})')
    table.labels[key] = label
    table.lines[key] = line

def _check_range(table, line, grade, lo, hi):
    if not lo <= grade <= hi:
        raise LabelError(f'{table.path}:{line}: grade {grade} is outside {lo}..{hi} for {table.format} labels')

def _read_grade_csv(path, fmt, image_cols, grade_cols, lo, hi, allow_unlabelled=False):
    table = _new_table(path, fmt)
    rows = _csv_rows(path, _read_text(path))
    first = next(rows, None)
    if first is None:
        raise LabelError(f'{path}: label file is empty')
    _, header = first
    if grade_cols is None: # Generic CSV: first column image, second column label.
        if len(header) < 2:
            raise LabelError(f'{path}:1: expected a header with two columns (image, label)')
        ci, cg = 0, 1
    else:
        ci, cg = _find_column(path, header, image_cols), _find_column(path, header, grade_cols)
    width = len([h for h in header if h])
    for line, fields in rows:
        if len(fields) <= max(ci, cg) or not fields[ci] or not fields[cg]:
            raise LabelError(f'{path}:{line}: missing field (expected {header[ci]!r} and {header[cg]!r})')
        if len([f for f in fields if f]) > width:
            raise LabelError(f'{path}:{line}: more fields than the header has columns')
        grade = _parse_int(path, line, fields[cg], 'grade')
        if allow_unlabelled and grade == EYEPACS_UNLABELLED:
            _add(table, line, fields[ci], None)
            table.unlabelled.add(image_key(fields[ci]))
            continue
        _check_range(table, line, grade, lo, hi)
        _add(table, line, fields[ci], grade)
    return table

def _read_ddr(path):
    # DDR: plain text, one 'name grade' pair per line, grade 0..4 or 5 = ungradable.
    table = _new_table(path, 'ddr')
    for line, raw in enumerate(_read_text(path).splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise LabelError(f'{path}:{line}: expected "name grade", got {len(fields)} fields')
        grade = _parse_int(path, line, fields[1], 'grade')
        _check_range(table, line, grade, 0, DDR_UNGRADABLE)
        _add(table, line, fields[0], grade)
        if grade == DDR_UNGRADABLE:
            table.ungradable.add(image_key(fields[0]))
    return table

def _read_odir(path):
    # ODIR-5K annotations exported as CSV: one row per patient with 'Left-Fundus', 'Right-Fundus' and the
    # eight 0/1 columns N D G C A H M O, which apply to both eyes. A 'filename' column (one row per image)
    # is accepted instead of the two fundus columns.
    table = _new_table(path, 'odir')
    rows = _csv_rows(path, _read_text(path))
    first = next(rows, None)
    if first is None:
        raise LabelError(f'{path}: label file is empty')
    _, header = first
    lowered = [h.lower() for h in header]
    class_cols = [_find_column(path, header, [c]) for c in ODIR_CLASSES]
    if 'left-fundus' in lowered and 'right-fundus' in lowered:
        image_cols = [lowered.index('left-fundus'), lowered.index('right-fundus')]
    else:
        image_cols = [_find_column(path, header, ['filename', 'Left-Fundus'])]
    for line, fields in rows:
        if len(fields) <= max(class_cols + image_cols):
            raise LabelError(f'{path}:{line}: missing field (expected {len(header)} columns)')
        vec = []
        for c, col in zip(ODIR_CLASSES, class_cols):
            v = _parse_int(path, line, fields[col], f'class {c} value')
            if v not in (0, 1):
                raise LabelError(f'{path}:{line}: class {c} value {v} is not 0 or 1')
            vec.append(v)
        for col in image_cols:
            if not fields[col]:
                raise LabelError(f'{path}:{line}: missing image name in column {header[col]!r}')
            _add(table, line, fields[col], list(vec))
    return table

def detect_format(path):
    """Guess the format of a grade file from its first line; raises LabelError when it cannot tell.
    The generic 'csv' format is never guessed."""
    lines = _read_text(path).splitlines()
    first = next((l for l in lines if l.strip()), '')
    delim = max([',', ';', '\t'], key=first.count)
    cols = {c.strip().lower() for c in first.split(delim)} if first.count(delim) else set()
    if {'image', 'level'} <= cols:
        return 'eyepacs'
    if {'id_code', 'diagnosis'} <= cols:
        return 'aptos'
    if {'image name', 'retinopathy grade'} <= cols:
        return 'messidor' if 'ophthalmologic department' in cols else 'idrid'
    if {c.lower() for c in ODIR_CLASSES} <= cols:
        return 'odir'
    fields = first.split()
    if len(fields) == 2 and fields[1].lstrip('-').isdigit():
        return 'ddr'
    raise LabelError(f'{path}:1: cannot tell the label format from this line; pass --label-format')

def read_labels(path, fmt):
    """Read a grade file.

    Args:
        path: the label file.
        fmt:  'auto' (detect_format), 'eyepacs' (CSV image,level; 0..4, -1 = unlabelled), 'aptos' (CSV id_code,diagnosis; 0..4),
              'idrid' (CSV 'Image name','Retinopathy grade'; 0..4), 'ddr' (text 'name grade'; 0..4,
              5 = ungradable), 'messidor' (CSV 'Image name','Retinopathy grade'; 0..3), 'odir' (CSV with
              Left-Fundus/Right-Fundus or filename and N,D,G,C,A,H,M,O; 8-element 0/1 vectors), 'csv'
              (header row; first column image, second column a non-negative integer label).

    Returns:
        LabelTable.

    Raises:
        LabelError: '<file>:<line>: <problem>' for missing fields, duplicate images, non-integer or
                    out-of-range grades, or a header without the expected columns.
    """
    if fmt == 'auto':
        fmt = detect_format(path)
    if fmt == 'eyepacs':
        return _read_grade_csv(path, fmt, ['image'], ['level'], 0, 4, allow_unlabelled=True)
    if fmt == 'aptos':
        return _read_grade_csv(path, fmt, ['id_code'], ['diagnosis'], 0, 4)
    if fmt == 'idrid':
        return _read_grade_csv(path, fmt, ['Image name'], ['Retinopathy grade'], 0, 4)
    if fmt == 'messidor':
        return _read_grade_csv(path, fmt, ['Image name', 'image'], ['Retinopathy grade'], 0, 3)
    if fmt == 'csv':
        return _read_grade_csv(path, fmt, None, None, 0, 10 ** 6)
    if fmt == 'ddr':
        return _read_ddr(path)
    if fmt == 'odir':
        return _read_odir(path)
    raise LabelError(f'unknown label format {fmt!r}; choose one of {", ".join(LABEL_FORMATS)}')

#----------------------------------------------------------------------------
