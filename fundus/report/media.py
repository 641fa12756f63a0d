# Pictures for HTML pages: matplotlib figures and images as embedded data URIs, so a page can be mailed or
# archived as one file.

import base64
import io

import numpy as np
import PIL.Image

#----------------------------------------------------------------------------

def figure_png(fig, dpi=100):
    """A matplotlib figure -> PNG bytes (tight bounding box)."""
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=dpi, bbox_inches='tight')
    return buf.getvalue()

def png_data_uri(png_bytes):
    return 'data:image/png;base64,' + base64.b64encode(png_bytes).decode('ascii')

def figure_uri(fig, dpi=100, close=True):
    """A matplotlib figure -> data URI; the figure is closed afterwards unless close=False."""
    uri = png_data_uri(figure_png(fig, dpi=dpi))
    if close:
        import matplotlib.pyplot as plt # Optional at import time: only pages with plots need matplotlib.
        plt.close(fig)
    return uri

def image_data_uri(image, max_width=1200):
    """PIL image or [H, W, C] uint8 -> data URI. Large pictures are shrunk and sent as JPEG to keep the page light."""
    if not isinstance(image, PIL.Image.Image):
        arr = np.asarray(image)
        image = PIL.Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    if image.width > max_width:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))), PIL.Image.LANCZOS)
    buf = io.BytesIO()
    if image.width * image.height > 300 * 300 and image.mode in ('RGB', 'L'):
        image.save(buf, format='JPEG', quality=90)
        mime = 'image/jpeg'
    else:
        image.save(buf, format='PNG')
        mime = 'image/png'
    return f'data:{mime};base64,' + base64.b64encode(buf.getvalue()).decode('ascii')

def open_image(path):
    """A PIL image fully read from `path`, or None when the file is missing or not an image."""
    try:
        with PIL.Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError):
        return None

#----------------------------------------------------------------------------
