# PyTorch infrastructure: ops with reference implementations, JIT builds, persistence, statistics.
# Imports only dnnlib. Nothing is compiled at import.
