# Generators an encoder drives. `reconstruct` is the one entry point used by training, inversion and the
# metrics: psp = w_avg + E(x) into any of our generators (SG2, SG3-T/R, official pickles); fundusgan =
# the dilated generator below, which also takes the encoder's pyramid.

from fundus.fundusgan import common
from fundus.fundusgan import encoder as encoder_lib

#----------------------------------------------------------------------------

def takes_pyramid(G):
    return bool(getattr(G, 'takes_pyramid', False))

def reconstruct(E, G, img):
    """(image [N, C, R, R], ws [N, num_ws, w_dim]) reconstructed from img [N, C, R, R] in [-1, 1]."""
    if takes_pyramid(G):
        offsets, feats = E(img, return_pyramid=True)
        ws = common.w_avg_of(G)[None, None, :] + offsets
        return G.synthesis(ws, feats, noise_mode='const'), ws
    ws = encoder_lib.encode(E, G, img)
    return common.synthesize(G, ws), ws

def synthesize_ws(G, ws, feats=None):
    """Image from given ws (and, for fundusgan, the pyramid of the photo they came from)."""
    if takes_pyramid(G):
        if feats is None:
            raise common.FundusGANError('the fundusgan generator needs encoder features next to the ws')
        return G.synthesis(ws, feats, noise_mode='const')
    return common.synthesize(G, ws)

#----------------------------------------------------------------------------
