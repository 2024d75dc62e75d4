"""One palette for runs and study settings in every chart: colour-blind safe (Okabe and Ito's
eight colours), with a marker shape per position as well, so no chart tells two runs apart by
colour alone."""

from __future__ import annotations

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Ordered so the first two (the usual custom-vs-transfer pair) contrast most.
RUN_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
)  # fmt: skip
RUN_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")


def colour(position: int) -> str:
    """The colour of the n-th selected run (or study setting), the same in every chart."""
    return RUN_COLOURS[position % len(RUN_COLOURS)]


def symbol(position: int) -> str:
    """The marker shape of the n-th selected run, the same in every chart with markers."""
    return RUN_SYMBOLS[position % len(RUN_SYMBOLS)]


def translucent(hex_colour: str, alpha: float = 0.18) -> str:
    """'#0072B2' -> 'rgba(0,114,178,0.18)': a band's fill in its line's colour."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"
