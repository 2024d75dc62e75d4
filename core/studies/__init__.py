"""Studies: a grid of ordinary runs (model settings x training-set sizes x seeds) that answers
"custom CNN or transfer learning, with how much data?" with curves, seeds and intervals.

`plan` defines a study and keeps its state in one JSON file; `runner` trains and evaluates its
cells one after another (resumable); `summary` turns the cells' stored results into the
per-size table, the paired differences and the verdicts.
"""
