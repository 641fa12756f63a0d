# Benchmarks (python bench/<name>.py); the zero-insertion baselines are shared with the ops tests.
