# Clinician-facing text of the reports: what each metric means in plain language, how to read the training
# curves, images, spectra and the memorisation audit, and the published numbers for scale. Kept apart from
# the page code so it can be reviewed as text. Keys of METRIC_HELP are registry family names
# (metrics.metric_main.metric_family).

NOT_COMPUTED = 'not computed for this run'

#----------------------------------------------------------------------------
# Metrics: (title, how to read the number, explanation) per family.

PAPER_NOTE = ('For scale: the StyleGAN3 DR1 study (arXiv 2501.00954; 2,602 DR1 photographs at 512x512, about 12 '
              'days of training on one GPU) reports FID 17.29 (bootstrap mean 21.18, 95% interval 20.83-21.56), '
              'KID 0.018, EQ-T 65.65 dB and EQ-R 64.64 dB. Small demo runs are far from those values.')

METRIC_HELP = {
    'fid': ('Frechet Inception Distance', 'lower is better, 0 = same statistics',
            'Compares the statistics of real and synthetic images as seen by an image-recognition network '
            '(Inception-v3). It summarises realism and variety in one number. It depends on the number of images '
            'used (fewer images give a higher value), so only compare FIDs computed with the same count.'),
    'kid': ('Kernel Inception Distance', 'lower is better, 0 = same statistics',
            'The same comparison as FID with an estimator that is not biased by small samples; better suited to '
            'datasets of a few thousand photographs.'),
    'eqt': ('Translation equivariance (EQ-T)', 'higher is better, in dB',
            'How faithfully the picture moves when the generator is asked to shift it, as a peak signal-to-noise '
            'ratio. High values mean anatomy and lesions move with the eye instead of sticking to pixel positions.'),
    'eqr': ('Rotation equivariance (EQ-R)', 'higher is better, in dB',
            'The same check for rotations of the picture.'),
    'pr': ('Precision and recall', 'both between 0 and 1, higher is better',
           'Precision: the share of synthetic images that fall among real ones (realism). Recall: the share of real '
           'images that the synthetic ones cover (variety).'),
    'is': ('Inception Score', 'higher is better',
           'Measures how confidently an ImageNet classifier recognises objects. It says little about fundus '
           'photographs and is shown only for comparison with other papers.'),
    'ppl': ('Perceptual path length', 'lower is smoother',
            'How abruptly images change along small steps in the latent space.'),
    'ssim': ('Structural similarity (SSIM)', '1 = identical pairs',
             'Pixel-level similarity of image pairs (e.g. reconstructions against their originals).'),
    'msssim': ('Multi-scale SSIM', '1 = identical pairs', 'SSIM computed at several image scales.'),
    'lpips': ('LPIPS', 'lower is closer, 0 = identical pairs', 'Perceptual distance of image pairs.'),
    'spectrum': ('Power spectrum distance', 'lower is closer, 0 = same spectrum',
                 'How differently fine and coarse detail (spatial frequencies) are distributed in real and '
                 'synthetic images; checks that textures such as vessel edges and microaneurysms have the '
                 'right sharpness.'),
    'memorization': ('Memorisation audit', 'fewer near-copies is better',
                     'For each synthetic image, the closest training photograph; near-copies would mean the model '
                     'reproduces patients\' images rather than inventing new ones.'),
}

BOOTSTRAP_NOTE = ('Bootstrap interval', 'the metric recomputed many times on resampled sets of the same images; the '
                  'spread shows how much the number would move with a different sample. FID resampled with replacement '
                  'sits above the single estimate, because repeated images count as less variety; compare intervals with '
                  'intervals and single values with single values.')

EXPECTED_FAMILIES = ('fid', 'kid', 'eqt', 'eqr') # Named as "not computed" when a run lacks them.

#----------------------------------------------------------------------------
# Page and section introductions.

SUMMARY_NOTE = ('This page summarises one training run of a StyleGAN3 generator of synthetic fundus photographs: how '
                'training went, what the images look like next to real ones, and the numbers that say how '
                'realistic, how varied and how novel they are. Each number comes with a short explanation.')

METRIC_CURVES_NOTE = ('Each point is one saved snapshot of the generator. Distances (FID, KID) should fall and '
                      'level off; if they rise again, an earlier snapshot may be the better model.')

IMAGES_NOTE = ('Real training photographs and synthetic images side by side. For a conditional model, each row '
               'is one grade of diabetic retinopathy (DR0 = none ... DR4 = proliferative); synthetic rows are '
               'generated for that grade. Look for the optic disc, vessels branching from it, the macula and, '
               'in higher grades, lesions; and for artefacts, especially near the circular border.')

OPTIONS_NOTE = ('The complete configuration, exactly as training_options.json stores it, so the run can be '
                'repeated.')

#----------------------------------------------------------------------------
# Training curves: one panel each.

CURVES = [
    # (panel title, [(stats key, label)], y label, explanation)
    ('Losses', [('Loss/G/loss', 'generator'), ('Loss/D/loss', 'discriminator')], 'loss',
     'The generator and the discriminator compete; neither loss should run away or collapse to zero.'),
    ('Discriminator scores', [('Loss/scores/real', 'real images'), ('Loss/scores/fake', 'synthetic images')], 'score',
     'How "real" the discriminator finds each kind of image. A growing gap can mean the discriminator memorises '
     'the training photographs (overfitting).'),
    ('Augmentation', [('Progress/augment', 'augment probability p'), ('Loss/signs/real', 'overfitting signal r_t')], 'value',
     'Adaptive augmentation raises p when the discriminator starts to overfit (r_t above its target, 0.6 by '
     'default). Small datasets usually settle at a clearly non-zero p.'),
    ('R1 penalty', [('Loss/r1_penalty', 'R1 penalty')], 'penalty',
     'A regulariser that keeps the discriminator smooth on real photographs (weight set by --gamma).'),
]

AUGMENT_TARGET = 0.6 # Drawn as a dotted line in the 'Augmentation' panel (train.py --target default).

#----------------------------------------------------------------------------
# Spectra and memorisation.

SPECTRUM_HELP = ('A power spectrum shows how much of the image lives at each level of detail: coarse shapes near the '
                 'centre of the heat map (left of the profile curve), fine texture such as thin vessels and '
                 'microaneurysms further out (to the right). Real and synthetic spectra should look alike; a '
                 'synthetic curve that falls off early means blurry images, extra peaks or grid patterns mean '
                 'artificial textures.')

MEMO_HELP = ('Each synthetic image is paired with the most similar training photograph. If pairs look like the same eye '
             '(same vessel pattern), the model has copied a patient\'s photograph and should not be shared. Distances '
             'of synthetic images to the training set should be similar to those of other real photographs, not '
             'much smaller.')

MEMO_ROWS = [
    # (key suffix, label, plain-language reading)
    ('near_copies', 'Near-copies', 'synthetic images closer to a training photograph than 99% of real photographs are to '
                                   'their nearest other training photograph; should be 0 or close to it'),
    ('near_copy_fraction', 'Share of near-copies', 'the same as a fraction of all synthetic images checked'),
    ('nn_median', 'Typical distance to the closest training photograph (synthetic)', 'median, in Inception feature units'),
    ('ref_nn_median', 'Typical distance to the closest other training photograph (real)', 'the same for real photographs: the yardstick'),
    ('nn_ratio', 'Ratio synthetic / real', 'around 1 or above is reassuring; well below 1 means synthetic images sit unusually close to training photographs'),
    ('mannwhitney_p', 'Test: synthetic closer than real? (p-value)', 'a small value (e.g. below 0.01) is a warning sign of copying'),
    ('ssim_median', 'Pixel similarity of closest pairs (median SSIM)', '1 = identical pixels'),
    ('ssim_max', 'Pixel similarity of the most similar pair (SSIM)', 'values near 1 deserve a look at that pair'),
]

#----------------------------------------------------------------------------
