"""The KPI charts read without a guide: every colour in the legend, nothing drawn over the
title or over another label (issue 16: the legend overlapped, the green bar was unexplained)."""

from __future__ import annotations

import pytest

from referral_service.portal import charts

ROWS = [{"organization_name": f"Firm number {i} Co., Ltd.", "new_client_credits": credits,
         "target": target}
        for i, (credits, target) in enumerate([(9, 8), (7, 10), (5, 5), (3, None), (2, 6)])]
POINTS = [(f"2026-0{m}", m * 2, 10 if m % 2 else None) for m in range(1, 8)]


def _boxes(figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    legend = axes.get_legend()
    return axes, legend, renderer


@pytest.mark.parametrize("compact", [False, True])
def test_the_month_chart_explains_every_colour_and_overlaps_nothing(compact):
    axes, legend, renderer = _boxes(charts.month_figure(ROWS, "2026-11", compact=compact))
    assert [text.get_text() for text in legend.get_texts()] == [
        "Target", "Credits", "Credits, target met"]
    colours = {tuple(round(c, 3) for c in patch.get_facecolor()[:3])
               for patch in axes.patches}
    swatches = {tuple(round(c, 3) for c in handle.get_facecolor()[:3])
                for handle in legend.legend_handles}
    assert colours <= swatches  # no bar colour the legend leaves unexplained
    title = axes.title.get_window_extent(renderer)
    box = legend.get_window_extent(renderer)
    assert not title.overlaps(box)
    assert box.y0 >= axes.get_window_extent(renderer).y1 - 1  # above the bars, not on them


def test_the_met_key_shows_only_when_a_target_is_met():
    _, legend, _ = _boxes(charts.month_figure(
        [{"organization_name": "Only", "new_client_credits": 1, "target": 4}], "2026-11"))
    assert [text.get_text() for text in legend.get_texts()] == ["Target", "Credits"]


@pytest.mark.parametrize("compact", [False, True])
def test_the_history_chart_keeps_value_labels_off_the_target_markers(compact):
    axes, legend, renderer = _boxes(charts.history_figure(POINTS, compact=compact))
    assert [text.get_text() for text in legend.get_texts()] == ["Credits", "Target"]
    assert not axes.title.get_window_extent(renderer).overlaps(
        legend.get_window_extent(renderer))
    markers = axes.collections[0]
    offsets = markers.get_offsets()
    transform = axes.transData
    for text in axes.texts:
        label = text.get_window_extent(renderer)
        for x, y in offsets:
            px, py = transform.transform((x, y))
            half = 12 if compact else 20  # half the marker's drawn width, in pixels
            inside = label.x0 - half <= px <= label.x1 + half and label.y0 <= py <= label.y1
            assert not inside, (text.get_text(), x, y)
