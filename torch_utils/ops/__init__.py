# Custom ops. Each module holds the pure-PyTorch reference (the specification and the CPU path) and,
# where a CUDA kernel exists, the code that builds and calls it lazily.
