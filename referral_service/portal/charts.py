"""KPI charts as PNG bytes, drawn with matplotlib's object API on the Agg renderer.

A `Figure` is built per request and dropped with it; pyplot is never used, since it keeps
every figure alive in a global registry across requests.

Chart words (title, axis, legend, months) are in the user's language when the machine has a
font that draws Chinese and Japanese (Debian: fonts-noto-cjk, which scripts/setup.sh and
scripts/test.sh install where they can), else in English: boxes in place of words help nobody.
The font is found by name among the installed ones (matplotlib's font_manager; no network)
and tried after DejaVu Sans for each character, so CJK firm names draw too.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache
from typing import Any

from flask_babel import force_locale, get_locale, gettext

from referral_service.portal.i18n import month_label

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
# Fonts with Chinese and Japanese glyphs, tried after DejaVu Sans for each character: the
# language's own first (the same character is drawn the Japanese or the Taiwanese way).
CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK SC", "Source Han Sans",
             "IPAGothic", "IPAexGothic", "Droid Sans Fallback", "WenQuanYi Zen Hei")
OWN_CJK_FONT = {"ja": "Noto Sans CJK JP", "zh": "Noto Sans CJK TC"}
LATIN_FONT = "DejaVu Sans"  # matplotlib's own


@cache
def cjk_fonts() -> tuple[str, ...]:
    """Return the names of the installed fonts that draw CJK text, in CJK_FONTS order."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    if not installed.intersection(CJK_FONTS):
        # matplotlib's font list is cached on disk when first built; a font installed since
        # (fonts-noto-cjk after the first chart) is found by looking at the files once.
        for path in font_manager.findSystemFonts(fontext="ttf") + font_manager.findSystemFonts(
                fontext="otf"):
            if "cjk" in path.lower() or "droidsansfallback" in path.lower():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(name for name in CJK_FONTS if name in installed)


def cjk_font() -> str | None:
    """Return the name of an installed font that draws CJK text, if any."""
    return next(iter(cjk_fonts()), None)


def font_family(language: str) -> list[str]:
    """Return the font fallback list for a chart in `language` (a CJK font only if installed)."""
    fonts = cjk_fonts()
    own = OWN_CJK_FONT.get(language)
    return [LATIN_FONT, *sorted(fonts, key=lambda name: name != own)]


@contextmanager
def in_language() -> Iterator[None]:
    """Write the chart in the user's language if it can be drawn, else in English."""
    from matplotlib import rc_context

    with rc_context({"font.family": font_family(get_locale().language)}):
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
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A name in a script no installed font has draws as boxes rather than failing.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _month_short(month: str, compact: bool) -> str:
    """A "YYYY-MM" month as an axis label in the user's language: "Nov 2026", "2026年11月";
    on a phone the month alone ("Nov", "11月"), so that twelve fit side by side."""
    from babel.dates import format_skeleton

    try:
        first = date(int(month[:4]), int(month[5:7]), 1)
    except ValueError:
        return month
    return format_skeleton("MMM" if compact else "yMMM", first, locale=get_locale())


def _style(axes: Any) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=TEXT_COLOUR, labelsize=9)


def month_chart(rows: list[dict[str, Any]], month: str, *, compact: bool = False) -> bytes:
    """Draw each firm's new-client credits against its target for one month (top firms)."""
    with in_language():
        return _png(month_figure(rows, month, compact=compact))


def month_figure(rows: list[dict[str, Any]], month: str, *, compact: bool = False) -> Any:
    """The figure of month_chart."""
    chosen = sorted(rows, key=lambda r: (-(r["new_client_credits"] or 0), -(r["target"] or 0),
                                         r["organization_name"]))
    chosen = chosen[:MAX_FIRMS_COMPACT if compact else MAX_FIRMS]
    figure = _figure(1.4 + 0.38 * max(len(chosen), 2), compact)
    axes = figure.add_subplot()
    _style(axes)
    axes.set_title(gettext("Credits against target, %(month)s", month=month_label(month)),
                   fontsize=11, color=TEXT_COLOUR, loc="left", pad=22)
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
    with in_language():
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
    labels = [_month_short(month, compact) for month, _c, _t in points]
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
