# FundusGAN (arXiv 2503.17831) and pSp-style w+ inversion for our generators: a ResNet + FPN encoder
# (encoder.py), the dilated generator (generator.py), losses (loss.py, paired.py), training (train.py),
# inversion and variants (invert.py) and reconstruction metrics (metrics.py). Guide: docs/fundusgan.md.
