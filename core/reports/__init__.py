"""Reports to share: one self-contained HTML file of selected runs (configuration, curves,
evaluations with intervals, generalization, CAMs, the data audit, paired tests), drawn with the
Compare page's own figures (core.figures). Built by `python -m core report` and Compare."""
