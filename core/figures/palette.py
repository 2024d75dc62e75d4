"""One palette for every chart: runs, study settings, classes and splits all take Okabe and
Ito's eight colour-blind-safe colours, with a marker shape or a line dash per position as well,
so no chart tells two things apart by colour alone. No chart module names a colour of its own
(tests/test_accessibility.py checks)."""

from __future__ import annotations

from collections.abc import Sequence

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Ordered so the first two (the usual custom-vs-transfer pair) contrast most.
RUN_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
)  # fmt: skip
RUN_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")


RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
REFERENCE = "grey"  # chance lines, diagonals, annotations: context, never data
# The threshold marked on a histogram: vermillion, the palette's warm contrast to its blue.
HIGHLIGHT = RUN_COLOURS[3]
# Splits: training and validation curves, per-split bars; fixed so "validation" looks the same
# on the Train page, the Dataset page and the Studies page.
SPLIT_COLOURS = {"train": RUN_COLOURS[0], "val": RUN_COLOURS[1], "test": RUN_COLOURS[2]}


def colour(position: int) -> str:
    """The colour of the n-th selected run (or study setting), the same in every chart."""
    return RUN_COLOURS[position % len(RUN_COLOURS)]


def symbol(position: int) -> str:
    """The marker shape of the n-th selected run, the same in every chart with markers."""
    return RUN_SYMBOLS[position % len(RUN_SYMBOLS)]


def dash(position: int) -> str:
    """The line dash of the n-th run, class or setting, for charts of lines without markers."""
    return RUN_DASHES[position % len(RUN_DASHES)]


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """Each class's colour, by its position in the sorted class names: glioma is the same
    colour on every page and for every run of a dataset."""
    return {name: colour(index) for index, name in enumerate(sorted(classes))}


def class_dashes(classes: Sequence[str]) -> dict[str, str]:
    """Each class's line dash, in the same order as `class_colours`."""
    return {name: dash(index) for index, name in enumerate(sorted(classes))}


def class_symbols(classes: Sequence[str]) -> dict[str, str]:
    """Each class's marker shape, in the same order as `class_colours`."""
    return {name: symbol(index) for index, name in enumerate(sorted(classes))}


def translucent(hex_colour: str, alpha: float = 0.18) -> str:
    """'#0072B2' -> 'rgba(0,114,178,0.18)': a band's fill in its line's colour."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"
