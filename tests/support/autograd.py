# Autograd helpers for tests: what a computation keeps for its backward pass.

import torch

#----------------------------------------------------------------------------

def saved_bytes(fn):
    """Bytes of the distinct storages autograd saves while fn() runs (each storage counted once)."""
    storages = {}
    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())

#----------------------------------------------------------------------------
