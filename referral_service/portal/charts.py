"""KPI charts as PNG bytes, drawn with matplotlib's object API on the Agg renderer.

A `Figure` is built per request and dropped with it; pyplot is never used, since it keeps
every figure alive in a global registry across requests.

Chart words are in the user's language when the machine has a font that draws Chinese and
Japanese (Debian: fonts-noto-cjk), else in English: boxes in place of words help nobody. The
same font, when present, draws CJK firm names.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from flask_babel import force_locale, gettext

CREDITS_COLOUR = "#2463a6"
TARGET_COLOUR = "#c7d3e0"
MET_COLOUR = "#2e7d4f"
TEXT_COLOUR = "#1f2933"
MAX_FIRMS = 12
MAX_FIRMS_COMPACT = 8
WIDTH_INCHES = 7.5
# A phone's screen: drawn narrower rather than shrunk, so the text stays readable.
COMPACT_WIDTH_INCHES = 4.0
DPI = 100
# Fonts with Chinese and Japanese glyphs, tried after DejaVu Sans for each character.
CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK SC", "Source Han Sans",
             "IPAGothic", "IPAexGothic", "Droid Sans Fallback", "WenQuanYi Zen Hei")


@cache
def cjk_font() -> str | None:
    """Return the name of an installed font that draws CJK text, if any."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


@contextmanager
def _words() -> Iterator[None]:
    """Write the chart in the user's language if it can be drawn, else in English."""
    if cjk_font() is not None:
        yield
        return
    with force_locale("en"):
        yield


def _figure(height_inches: float, compact: bool = False):
    # Imported here: matplotlib costs a few hundred ms to import, paid by the first chart only.
    from matplotlib.figure import Figure

    width = COMPACT_WIDTH_INCHES if compact else WIDTH_INCHES
    figure = Figure(figsize=(width, height_inches), dpi=DPI)
    figure.patch.set_facecolor("white")
    if cjk_font() is not None:
        # A font list: a character DejaVu Sans lacks is drawn by the CJK font.
        from matplotlib import rcParams

        rcParams["font.family"] = ["DejaVu Sans", cjk_font()]
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A name in a script DejaVu Sans lacks (e.g. CJK) draws as boxes rather than failing.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _style(axes: Any) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=TEXT_COLOUR, labelsize=9)


def month_chart(rows: list[dict[str, Any]], month: str, *, compact: bool = False) -> bytes:
    """Draw each firm's new-client credits against its target for one month (top firms)."""
    with _words():
        return _png(month_figure(rows, month, compact=compact))


def month_figure(rows: list[dict[str, Any]], month: str, *, compact: bool = False) -> Any:
    """The figure of month_chart."""
    chosen = sorted(rows, key=lambda r: (-(r["new_client_credits"] or 0), -(r["target"] or 0),
                                         r["organization_name"]))
    chosen = chosen[:MAX_FIRMS_COMPACT if compact else MAX_FIRMS]
    figure = _figure(1.4 + 0.38 * max(len(chosen), 2), compact)
    axes = figure.add_subplot()
    _style(axes)
    axes.set_title(gettext("Credits against target, %(month)s", month=month), fontsize=11,
                   color=TEXT_COLOUR, loc="left", pad=22)
    if not chosen:
        axes.text(0.5, 0.5, gettext("No referrals or targets in this month yet."), ha="center",
                  va="center", transform=axes.transAxes, color=TEXT_COLOUR)
        axes.set_axis_off()
        return figure
    # Top firm at the top: bar positions count down.
    positions = list(range(len(chosen)))[::-1]
    names = [_short(row["organization_name"], 18 if compact else 28) for row in chosen]
    credits = [row["new_client_credits"] or 0 for row in chosen]
    targets = [row["target"] or 0 for row in chosen]
    axes.barh(positions, targets, height=0.75, color=TARGET_COLOUR)
    colours = [MET_COLOUR if row["target"] and c >= row["target"] else CREDITS_COLOUR
               for row, c in zip(chosen, credits, strict=True)]
    axes.barh(positions, credits, height=0.45, color=colours)
    for position, value in zip(positions, credits, strict=True):
        axes.text(value, position, f" {value}", va="center", fontsize=8, color=TEXT_COLOUR)
    axes.set_yticks(positions, names)
    axes.set_xlabel(gettext("New clients") if compact else
                    gettext("New clients (credits = converted as referrer + as receiver)"),
                    fontsize=9, color=TEXT_COLOUR)
    axes.xaxis.get_major_locator().set_params(integer=True)
    # Every colour explained: the green of a met target too (the bars' own labels would name
    # only the first bar's colour).
    keys = [(gettext("Target"), TARGET_COLOUR), (gettext("Credits"), CREDITS_COLOUR)]
    if MET_COLOUR in colours:
        keys.append((gettext("Credits, target met"), MET_COLOUR))
    _legend(figure, axes, keys, compact)
    if len(rows) > len(chosen):
        axes.text(1.0, -0.12 - 0.6 / len(chosen),
                  gettext("Top %(shown)s of %(total)s firms", shown=len(chosen), total=len(rows)),
                  ha="right", transform=axes.transAxes, fontsize=8, color=TEXT_COLOUR)
    return figure


def _legend(figure: Any, axes: Any, keys: list[tuple[str, str]], compact: bool,
            marker: str | None = None) -> None:
    """A legend of coloured swatches (a line for `marker`'s key) in a row of its own between
    the title and the plot, so that it never covers either."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=colour, linewidth=2.5, label=label) if label == marker
               else Patch(color=colour, label=label) for label, colour in keys]
    axes.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0),
                ncol=len(handles) if not compact else min(len(handles), 2), fontsize=8,
                frameon=False, borderaxespad=0.3, handlelength=1.2)
    # The title goes above the legend: as many lines up as the legend has rows.
    rows = -(-len(handles) // (2 if compact else len(handles)))
    axes.title.set_y(1.0)
    axes.set_title(axes.get_title(loc="left"), loc="left", fontsize=11, color=TEXT_COLOUR,
                   pad=8 + 16 * rows)


def history_chart(points: list[tuple[str, int, int | None]], *, compact: bool = False) -> bytes:
    """Draw new-client credits per month, with the month's target as a marker."""
    with _words():
        return _png(history_figure(points, compact=compact))


def history_figure(points: list[tuple[str, int, int | None]], *, compact: bool = False) -> Any:
    """The figure of history_chart."""
    figure = _figure(3.0, compact)
    axes = figure.add_subplot()
    _style(axes)
    axes.set_title(gettext("New-client credits by month"), fontsize=11, color=TEXT_COLOUR,
                   loc="left", pad=22)
    positions = list(range(len(points)))
    credits = [credit for _month, credit, _target in points]
    axes.bar(positions, credits, width=0.6, color=CREDITS_COLOUR)
    with_target = [(x, target) for x, (_m, _c, target) in zip(positions, points, strict=True)
                   if target is not None]
    if with_target:
        axes.scatter([x for x, _t in with_target], [t for _x, t in with_target], marker="_",
                     s=300 if compact else 900, linewidths=2.5, color=TEXT_COLOUR,
                     zorder=3)
    targets = dict(with_target)
    top = max([*credits, *targets.values(), 1])
    for x, value in zip(positions, credits, strict=True):
        # Above the bar, unless the month's target marker sits there: then inside the bar's
        # top (or above the marker, for a bar too short to hold it).
        target = targets.get(x)
        if target is None or not 0 <= target - value <= 0.09 * top:
            axes.text(x, value, str(value), ha="center", va="bottom", fontsize=8,
                      color=TEXT_COLOUR)
        elif value >= 0.12 * top:
            axes.text(x, value - 0.02 * top, str(value), ha="center", va="top", fontsize=8,
                      color="white", fontweight="bold")
        else:
            axes.text(x, target + 0.03 * top, str(value), ha="center", va="bottom",
                      fontsize=8, color=TEXT_COLOUR)
    labels = [month[2:] if compact else month for month, _c, _t in points]
    axes.set_xticks(positions, labels)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(0, top * 1.15 + 0.5)
    target_key = gettext("Target")
    keys = [(gettext("Credits"), CREDITS_COLOUR)]
    if with_target:
        keys.append((target_key, TEXT_COLOUR))
    _legend(figure, axes, keys, compact, marker=target_key)
    return figure


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
