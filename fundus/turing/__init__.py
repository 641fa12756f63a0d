# Reader study (visual Turing test): study design, web app, storage, statistics. See docs/turing.md.
