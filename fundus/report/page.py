# An HTML page as data: a Page holds Sections, a Section holds blocks (Text, Note, Missing, Image, ImageRow,
# Table (cells may be Cell), Code, Links, Definitions, Subsection, Pair). Callers build these parts; templates/page.html renders them with autoescaping.
# Nothing edits rendered HTML: a page that needs a new kind of content gets a new block type and macro.

import dataclasses
import datetime
import os
from typing import Any

import jinja2

import dnnlib

NOT_COMPUTED = 'not computed'

#----------------------------------------------------------------------------
# Blocks. Every string is plain text (escaped on render); `Text.html=True` is for the few fixed, trusted
# snippets the project writes itself (e.g. a <b> in an explanation), never for user or file content.

@dataclasses.dataclass
class Text:
    text:   str                 # A paragraph.
    html:   bool = False        # The text is trusted markup written by this project.
    muted:  bool = False        # Secondary information (grey): file names, provenance, notes.

@dataclasses.dataclass
class Note:
    text:   str                 # An explanation for a non-specialist reader, shown in a grey box.
    html:   bool = False

@dataclasses.dataclass
class Missing:
    what:   str                 # What is absent, e.g. 'FID'.
    why:    str = None          # Why, in a few words; None when there is nothing to add.

@dataclasses.dataclass
class Image:
    uri:        str             # data: URI (see media.py) or a relative path.
    alt:        str             # Alternative text: what the picture shows.
    caption:    str = None

@dataclasses.dataclass
class ImageRow:
    label:  str                 # Short row label, e.g. 'DR2'.
    uri:    str
    alt:    str

@dataclasses.dataclass
class Cell:
    text:   str                 # The cell's main text (numbers already formatted by the caller).
    sub:    str = None          # A second, grey line under it (units, counts, a long name).
    num:    bool = False        # Right-aligned like a number.
    bold:   bool = False
    code:   bool = False        # Monospace: option values, file names.

@dataclasses.dataclass
class Table:
    header:     list            # Column names; [] = no header row.
    rows:       list            # Rows of cells: numbers (right-aligned), None (an em dash), strings or Cell.
    caption:    str = None
    row_header: bool = False    # The first cell of every row labels the row (rendered as <th>).

@dataclasses.dataclass
class Code:
    text:   str                 # Preformatted text: commands, JSON.

@dataclasses.dataclass
class Links:
    items:  list                # [(label, href), ...]

@dataclasses.dataclass
class Definitions:
    items:  list                # [(term, explanation), ...]: a bulleted list with the terms in bold.

@dataclasses.dataclass
class Subsection:
    title:  str
    blocks: list = dataclasses.field(default_factory=list)

@dataclasses.dataclass
class Pair:
    left:   list                # Blocks of the left column, e.g. real photographs ...
    right:  list                # ... and of the right column (synthetic images); side by side on wide screens.

@dataclasses.dataclass
class Section:
    anchor: str                 # id attribute and navigation target.
    title:  str
    blocks: list = dataclasses.field(default_factory=list)
    nav:    str = None          # Short label in the navigation bar; None = the title.

@dataclasses.dataclass
class Page:
    title:      str
    sections:   list                        # [Section, ...] in reading order; all appear in the navigation bar.
    subtitle:   str = None                  # One line under the title (run directory, study name, ...).
    problems:   list = dataclasses.field(default_factory=list) # Files that could not be read, listed at the end.
    generator:  str = 'fundus-stylegan3'    # Named in the footer with the time of writing.
    not_computed: str = NOT_COMPUTED        # How Missing blocks say that something is absent.

#----------------------------------------------------------------------------
# Rendering.

_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'templates')

def _environment():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters['kind'] = lambda block: type(block).__name__
    env.filters['cell'] = format_cell
    env.tests['number'] = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    env.tests['cell'] = lambda v: isinstance(v, Cell)
    return env

def format_cell(value):
    """Table cells: None -> em dash, floats to 4 significant digits (6 for tiny or huge magnitudes)."""
    if value is None:
        return '\u2014'
    if isinstance(value, float):
        if value != value:
            return 'NaN'
        return f'{value:.4g}' if 1e-3 <= abs(value) < 1e5 or value == 0 else f'{value:.3e}'
    return str(value)

def render(page, stamp=None):
    """Page -> HTML text. `stamp` overrides the time of writing (tests pin it)."""
    stamp = stamp or datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    return _environment().get_template('page.html').render(page=page, stamp=stamp, not_computed=page.not_computed)

def write(page, path, stamp=None):
    """Render `page` and write it atomically to `path`. Returns the path."""
    text = render(page, stamp=stamp)
    dnnlib.atomic_write(path, lambda f: f.write(text.encode('utf-8')))
    return path

#----------------------------------------------------------------------------
