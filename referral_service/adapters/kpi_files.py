"""KPI export files: JSON, CSV (UTF-8 with BOM) and XLSX bytes of a month's rows.

An XLSX holds one sheet per level given (Organizations, Departments, People), the corrections
of closed months booked in the month if there are any (Corrections) and, with the department
level, a chart sheet (XlsxWriter's native chart) of credits against agreed targets by
department. The JSON carries the corrections too; a CSV holds the rows alone.
"""

from __future__ import annotations

import csv
import io
import operator
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import xlsxwriter

FORMATS = ("json", "csv", "xlsx")
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection), and
# some read `;` as a separator; a cell starting with any blank (space, tab, CR, newline) is
# guarded too, since Excel and LibreOffice trim it before deciding. Full-width and other
# compatibility forms (＝ ＋ － ＠ ﹦ ...) are caught by their NFKC form, the minus sign by name.
FORMULA_TRIGGERS = ("=", "+", "-", "@", ";", "\t", "\r", "\n", "\u2212")
SHEET_NAMES = {"organization": "Organizations", "department": "Departments",
               "person": "People"}
CHART_SHEET = "Credits by department"
CORRECTIONS_SHEET = "Corrections"
# The departments a chart shows at most (the first ones in the sheet): a bar chart of
# thousands of bars says nothing, and Excel draws it slowly.
CHART_BARS = 200


@dataclass(frozen=True)
class Sheet:
    """The rows of one KPI level, with their columns (a name column second)."""

    level: str
    columns: Sequence[str]
    rows: list[dict[str, Any]]


def filename(month: str, fmt: str, level: str = "organization") -> str:
    """Return the download name of a month's export (the level named unless organization)."""
    return f"kpi-{month}.{fmt}" if level == "organization" else f"kpi-{month}-{level}.{fmt}"


def write(rows: list[dict[str, Any]], fmt: str, month: str, *, columns: Sequence[str],
          created: datetime, corrections: Sequence[dict[str, Any]] = ()) -> bytes:
    """Return the rows as JSON, CSV (UTF-8 with BOM) or XLSX bytes; the same rows give the
    same bytes (`created` is the XLSX's fixed creation time). The JSON also carries
    `corrections` (a list, maybe empty); the XLSX written here has no Corrections sheet."""
    if fmt == "json":
        # orjson: a month of 10k rows encodes in a few ms, against ~80 ms for json.dumps.
        return orjson.dumps({"month": month, "rows": rows, "corrections": list(corrections)})
    if fmt == "csv":
        return _csv(rows, columns)
    if fmt == "xlsx":
        return write_sheets([Sheet("organization", columns, rows)], month, created=created)
    raise ValueError(f"Unknown export format {fmt!r}; one of {', '.join(FORMATS)}.")


# First characters no trigger can be, even after NFKC (their own form): most cells (names,
# months, statuses) are decided by one set lookup, without the normalisation.
_PLAIN_FIRST = frozenset(string.ascii_letters + string.digits)


def formula_like(value: Any) -> bool:
    """Return whether a spreadsheet could read this cell as a formula: the one formula guard
    of every export (CSV cells get a quote, XLSX cells the quote-prefix style)."""
    return isinstance(value, str) and value != "" and value[0] not in _PLAIN_FIRST and (
        value[0].isspace() or value.startswith(FORMULA_TRIGGERS)
        or unicodedata.normalize("NFKC", value[0]).startswith(FORMULA_TRIGGERS))


def neutralise(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a quote."""
    return "'" + value if formula_like(value) else value


def _csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    # Only text can carry a formula; csv writes None as an empty cell. A cell starting with
    # a letter or a digit is plain without a call (bench_kpi.py, 39k person rows: 140 ms of
    # CPU with formula_like called on every text cell, 90 ms this way). The rows are made
    # as the writer takes them: 39k lists alive at once set off a full garbage collection
    # (about 85 ms in a service process).
    values = operator.itemgetter(*columns) if len(columns) > 1 else (
        lambda row: (row[columns[0]],))
    writer.writerows([neutralise(v) if isinstance(v, str) and v and v[0] not in _PLAIN_FIRST
                      else v for v in values(row)] for row in rows)
    # The BOM makes Excel read the file as UTF-8 (firm names in Chinese, Japanese, ...).
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_sheets(sheets: Sequence[Sheet], month: str, *, created: datetime,
                 corrections: Sequence[Sheet] = ()) -> bytes:
    """Return an XLSX with one sheet per level, the corrections of each level that has any
    (`corrections`: a Sheet of flat rows per level) and, if the departments are among them,
    the chart sheet; the same rows give the same bytes (`created` is the fixed creation
    time)."""
    buffer = io.BytesIO()
    # Never turn text into formulas or links, whatever a firm's name starts with.
    workbook = xlsxwriter.Workbook(buffer, {
        "in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False,
    })
    # A fixed creation time: the same month exported twice gives the same bytes.
    workbook.set_properties({"title": f"Referral KPI {month}", "created": created})
    formats = {"header": workbook.add_format({"bold": True}),
               "percent": workbook.add_format({"num_format": "0.0%"}),
               "guarded": workbook.add_format({"quote_prefix": True})}
    for sheet in sheets:
        _xlsx_sheet(workbook, formats, sheet)
    for sheet in corrections:
        if sheet.rows:
            name = (CORRECTIONS_SHEET if len(sheets) == 1
                    else f"{CORRECTIONS_SHEET}, {SHEET_NAMES[sheet.level]}")
            _plain_sheet(workbook, formats, name, sheet)
    departments = next((sheet for sheet in sheets if sheet.level == "department"), None)
    if departments is not None and departments.rows:
        _chart_sheet(workbook, departments, month)
    workbook.close()
    return buffer.getvalue()


def _xlsx_sheet(workbook, formats: dict[str, Any], data: Sheet) -> None:
    sheet = workbook.add_worksheet(SHEET_NAMES[data.level])
    columns = data.columns
    for column, name in enumerate(columns):
        sheet.write_string(0, column, name, formats["header"])
    attainment = columns.index("attainment")
    for number, row in enumerate(data.rows, start=1):
        for column, name in enumerate(columns):
            value = row[name]
            if value is None:
                continue
            if isinstance(value, str):
                # Text already (strings_to_formulas off); the quote prefix keeps it text
                # when someone edits the cell or saves the sheet again as CSV, without
                # changing the value.
                sheet.write_string(number, column, value,
                                   formats["guarded"] if formula_like(value) else None)
            else:
                sheet.write_number(number, column, value,
                                   formats["percent"] if column == attainment else None)
    sheet.freeze_panes(1, 0)
    sheet.set_column(1, 1, 40)
    sheet.set_column(2, len(columns) - 1, 14)


def _plain_sheet(workbook, formats: dict[str, Any], name: str, data: Sheet) -> None:
    """A sheet of rows as they are: text guarded against formulas, numbers as numbers."""
    sheet = workbook.add_worksheet(name)
    for column, header in enumerate(data.columns):
        sheet.write_string(0, column, header, formats["header"])
    for number, row in enumerate(data.rows, start=1):
        for column, header in enumerate(data.columns):
            value = row[header]
            if isinstance(value, str):
                sheet.write_string(number, column, value,
                                   formats["guarded"] if formula_like(value) else None)
            elif value is not None:
                sheet.write_number(number, column, value)
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, len(data.columns) - 1, 16)


def _chart_sheet(workbook, departments: Sheet, month: str) -> None:
    """A column chart of each department's credits against its agreed target."""
    name = SHEET_NAMES["department"]
    last = min(len(departments.rows), CHART_BARS)
    columns = departments.columns
    labels = columns.index("department_name")
    chart = workbook.add_chart({"type": "column"})
    for series, column in (("Credits", "new_client_credits"), ("Agreed target", "target")):
        index = columns.index(column)
        chart.add_series({"name": series, "categories": [name, 1, labels, last, labels],
                          "values": [name, 1, index, last, index]})
    chart.set_title({"name": f"New-client credits against agreed targets, {month}"})
    chart.set_x_axis({"name": "Department"})
    chart.set_y_axis({"name": "New clients"})
    chartsheet = workbook.add_chartsheet(CHART_SHEET)
    chartsheet.set_chart(chart)
