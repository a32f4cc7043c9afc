"""KPI charts in the user's language (issue 16): with a CJK font installed (fonts-noto-cjk), a
Japanese or Chinese user's chart has its title, legend and months in their language, every
character drawn (no "Glyph ... missing from font"). Without the font the test is skipped,
except in CI, which installs it (scripts/test.sh): there a missing font fails."""

from __future__ import annotations

import io
import os
import warnings

import pytest

from referral_service.portal import charts

ROWS = [{"organization_name": "高雄精密股份有限公司", "new_client_credits": 9, "target": 8},
        {"organization_name": "東方ソリューションズ東京", "new_client_credits": 3, "target": 6}]
POINTS = [("2026-09", 2, 4), ("2026-10", 5, None), ("2026-11", 6, 6)]
JA = {"Accept-Language": "ja"}
ZH = {"Accept-Language": "zh-TW"}


@pytest.fixture
def cjk_font() -> str:
    font = charts.cjk_font()
    if font is None:
        message = "no CJK font installed (Debian: apt-get install fonts-noto-cjk)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI installs fonts-noto-cjk (scripts/test.sh), yet {message}")
        pytest.skip(message)
    return font


def _svg(figure) -> tuple[str, list[str]]:
    """Draw `figure` as SVG with its text kept as text; return it and the warnings raised."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, rc_context({"svg.fonttype": "none"}):
        warnings.simplefilter("always")
        figure.savefig(buffer, format="svg")
    return buffer.getvalue(), [str(warning.message) for warning in caught]


def test_a_japanese_users_month_chart_is_in_japanese_with_every_glyph(app, cjk_font):
    with app.test_request_context("/kpi/chart.png", headers=JA), charts.in_language():
        svg, warned = _svg(charts.month_figure(ROWS, "2026-11"))
    assert "2026年11月 の実績と目標" in svg  # the title, its month as Japanese write it
    assert ">目標<" in svg and ">実績<" in svg and "実績（目標達成）" in svg  # the legend
    assert "高雄精密股份有限公司" in svg and "東方ソリューションズ東京" in svg
    assert "Target" not in svg and "Credits" not in svg
    assert not [message for message in warned if "missing from font" in message], warned


def test_a_japanese_users_history_chart_names_the_months_in_japanese(app, cjk_font):
    with app.test_request_context("/dashboard", headers=JA), charts.in_language():
        svg, warned = _svg(charts.history_figure(POINTS))
    assert "2026年9月" in svg and "2026年11月" in svg
    assert "2026-09" not in svg
    assert not [message for message in warned if "missing from font" in message], warned


def test_a_taiwanese_users_chart_is_drawn_with_the_traditional_chinese_font(app, cjk_font):
    with app.test_request_context("/kpi/chart.png", headers=ZH), charts.in_language():
        from matplotlib import rcParams

        family = list(rcParams["font.family"])
        svg, warned = _svg(charts.month_figure(ROWS, "2026-11"))
    if "Noto Sans CJK TC" in charts.cjk_fonts():
        assert family[:2] == ["DejaVu Sans", "Noto Sans CJK TC"]
    assert "2026年11月" in svg
    assert not [message for message in warned if "missing from font" in message], warned


def test_the_png_routes_draw_a_chart_for_a_japanese_user(app, cjk_font):
    with app.test_request_context("/kpi/chart.png", headers=JA):
        body = charts.month_chart(ROWS, "2026-11")
        small = charts.history_chart(POINTS, compact=True)
    assert body.startswith(b"\x89PNG") and small.startswith(b"\x89PNG")
