# The embedded demo (`make demo` / `python -m fundus.demo`): both papers end to end on phantom data.
#   config.py      presets (CPU / GPU) and the split of the time budget between the stages
#   stages.py      the stage runner: each stage returns a StageResult (status, one-line note, links)
#   shipped.py     the shipped pretrained phantom model (manifest with SHA-256), when one is in the box
#   gan.py         stages 1-3: phantom dataset, training from scratch, images per grade, metrics, run report
#   encoder.py     stage 4: a small pSp encoder, reconstructions, *_recon metrics, a mix picture
#   downstream.py  stage 5: a small classifier study (real vs real+synthetic vs real+classic)
#   reader.py      stage 6: a reader study (visual Turing test) of real vs synthetic phantoms
#   index.py       stage 7: one HTML index linking every page, with every stage's status
#   pipeline.py    run_demo(): the list of stages and their deadlines
