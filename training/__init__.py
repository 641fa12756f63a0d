# Networks, loss, augmentation, datasets and the training loop.
