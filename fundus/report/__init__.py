# Reports for people who judge images: an HTML toolkit (page.py: structured blocks rendered by Jinja2
# templates, never string-edited HTML), image/figure embedding (media.py) and the training-run report
# (run.py, `python -m fundus.report RUN_DIR`). The encoder, classifier-study and reader-study pages use the
# same toolkit, so every page of the project looks and reads alike.
