# Networks, loss, augmentation, datasets, the training loop and what runs it: the resolved config
# (config.py), launching (launch.py), run support (run_support.py), checkpoints and generation.
