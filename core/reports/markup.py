"""The report's HTML pieces: escaped text, tables, figures and the page around them.

Plain string building over `html.escape` (every text from a run is escaped where it is put in);
plotly.js is inlined once in the page's head, so the file opens without a network.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import plotly.graph_objects as go
import plotly.io
import plotly.offline

from core.reports.facts import Table

ROW_FIGURE_WIDTH = 560  # pixels: two side by side on the page's 1,152-pixel column

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 0 24px 48px; color: #1f2328; line-height: 1.45; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px;
     margin-top: 40px; } h3 { margin-bottom: 6px; }
.meta, .note, figcaption, .caption { color: #57606a; font-size: 0.92em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
.figures > div { flex: none; }
.cams { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 224px; } figure img { width: 224px; height: auto; display: block; }
nav a { margin-right: 12px; }
"""


def text(value: object) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def paragraph(content: str, css_class: str | None = None) -> str:
    """A paragraph of escaped text (a note or caption when given its class)."""
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{attribute}>{text(content)}</p>"


def _is_number(cell: str) -> bool:
    head = cell.split(" ", 1)[0].rstrip("%").replace(",", "").replace(".", "", 1).lstrip("-")
    return head.isdigit()


def table(data: Table, *, align_numbers: bool = True) -> str:
    """An HTML table of already formatted cells; numeric cells right-aligned (unless the table
    mixes settings of every kind in a column, where that reads as ragged)."""

    def cell_html(cell: str) -> str:
        attribute = ' class="number"' if align_numbers and _is_number(cell) else ""
        return f"<td{attribute}>{text(cell)}</td>"

    head = "".join(f"<th>{text(header)}</th>" for header in data.headers)
    rows = ("<tr>" + "".join(cell_html(cell) for cell in row) + "</tr>" for row in data.rows)
    body = "".join(rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Figures:
    """Turns plotly figures into divs with ids figure-1, figure-2, ... (one report's count)."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, figure: go.Figure) -> str:
        """The figure as a div and the script that draws it (plotly.js is in the page head)."""
        self.count += 1
        return plotly.io.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"figure-{self.count}",
            config={"displaylogo": False, "responsive": True},
        )

    def row(self, figures: Iterable[go.Figure]) -> str:
        """Figures side by side at a fixed width, wrapping when the page is narrow. Each is
        drawn as its script is parsed, before the next one exists: at the responsive width it
        took the whole row, and was clipped once its neighbours arrived."""
        divs = (self.div(go.Figure(one).update_layout(width=ROW_FIGURE_WIDTH)) for one in figures)
        return '<div class="figures">' + "".join(divs) + "</div>"


def section(anchor: str, title: str, *parts: str) -> str:
    """A titled section of already built HTML parts."""
    return f'<section id="{text(anchor)}"><h2>{text(title)}</h2>{"".join(parts)}</section>'


def page(title: str, header: str, sections: dict[str, tuple[str, str]]) -> str:
    """The whole document: head with the style and plotly.js, a table of contents, sections
    (anchor -> (title, HTML))."""
    contents = "".join(
        f'<a href="#{text(anchor)}">{text(name)}</a>' for anchor, (name, _) in sections.items()
    )
    body = "".join(section_html for _, section_html in sections.values())
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{text(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        f"</head><body><header>{header}</header><nav>{contents}</nav>{body}</body></html>\n"
    )
