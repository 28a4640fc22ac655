"""A drift report as one self-contained HTML page: inline CSS and SVG, no scripts or links
to anything outside the page. Every user-supplied string is escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.monitoring.drift._report import ColumnDrift, DriftReport, MultivariateDrift

__all__ = ["render_report"]

_WIDTH, _HEIGHT, _PAD, _AXIS = 420, 150, 6, 34
_REFERENCE_COLOR, _CURRENT_COLOR = "#4c78a8", "#f58518"
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
h3{font-size:1rem;margin:0 0 .3rem}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.7rem;font-size:.85em;
font-weight:600}
.drift{background:#fde2e1;color:#a61b1b}.no_drift{background:#e1f5e4;color:#1b6b2e}
.other{background:#eee;color:#555}.card{border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;
margin:.8rem 0;display:inline-block;vertical-align:top;width:460px;margin-right:.8rem}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em}
.muted{color:#666}ul.warnings li{color:#8a5a00}
"""


def render_report(report: DriftReport, *, title: str) -> str:
    verdict = "Dataset drift detected" if report.dataset_drift else "No dataset drift"
    badge = "drift" if report.dataset_drift else "no_drift"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p><span class="badge {badge}">{verdict}</span> '
        f"{report.drifted_count} of {report.tested_count} tested columns drifted "
        f"(share {report.share:.2f}; the dataset drifts at {report.drift_share:g} or more). "
        f'<span class="muted">Reference {report.reference_rows:,} rows, current '
        f"{report.current_rows:,} rows.</span></p>",
    ]
    if report.warnings:
        items = "".join(f"<li>{escape(text)}</li>" for text in report.warnings)
        parts.append(f'<h2>Warnings</h2><ul class="warnings">{items}</ul>')
    columns = list(report.columns)
    if report.prediction is not None:
        columns.append(report.prediction)
    parts.append("<h2>Columns</h2>")
    parts.append(_summary_table(columns, report.prediction))
    if report.multivariate is not None:
        parts.append(_multivariate(report.multivariate))
    parts.append(
        '<h2>Distributions</h2><p class="legend">'
        f'<span style="background:{_REFERENCE_COLOR}"></span>reference'
        f'<span style="background:{_CURRENT_COLOR}"></span>current '
        '<span class="muted">(share of each side\'s values per bin)</span></p>'
    )
    parts.extend(_card(index, column) for index, column in enumerate(columns))
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(columns: Sequence[ColumnDrift], prediction: ColumnDrift | None) -> str:
    head = (
        "<table><tr><th>column</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>p-value</th><th>threshold</th><th>verdict</th><th>rows (ref / cur)</th>"
        "<th>nulls (ref / cur)</th></tr>"
    )
    rows = []
    for index, column in enumerate(columns):
        role = ' <span class="muted">(prediction)</span>' if column is prediction else ""
        rows.append(
            f'<tr><td><a href="#column-{index}">{escape(column.name)}</a>{role}</td>'
            f"<td>{escape(column.kind or '')}</td><td>{escape(column.method or '')}</td>"
            f'<td class="num">{_number(column.statistic)}</td>'
            f'<td class="num">{_number(column.p_value)}</td>'
            f'<td class="num">{_number(column.threshold)}</td><td>{_badge(column.status)}</td>'
            f'<td class="num">{column.reference_rows:,} / {column.current_rows:,}</td>'
            f'<td class="num">{column.nulls.get("reference", 0):,} / '
            f"{column.nulls.get('current', 0):,}</td></tr>"
        )
    return head + "".join(rows) + "</table>"


def _multivariate(result: MultivariateDrift) -> str:
    names = ", ".join(escape(name) for name in result.columns)
    return (
        f"<h2>Multivariate drift</h2><p>{_badge(result.status)} {escape(result.message)}</p>"
        f'<p class="muted">Columns: {names}</p>'
    )


def _card(index: int, column: ColumnDrift) -> str:
    details = escape(column.message)
    if column.new_categories:
        shown = ", ".join(escape(str(value)) for value in column.new_categories[:10])
        details += f"<br>New values: {shown}"
    chart = _chart(column.histogram) if column.histogram is not None else ""
    return (
        f'<div class="card" id="column-{index}"><h3>{escape(column.name)} '
        f'{_badge(column.status)}</h3><p class="muted">{details}</p>{chart}</div>'
    )


def _chart(histogram: Mapping[str, Any]) -> str:
    reference = [float(count) for count in histogram["reference"]]
    current = [float(count) for count in histogram["current"]]
    if histogram["kind"] == "numeric":
        edges = histogram["edges"]
        labels = [_short(edges[0]), _short(edges[-1])]
        return _bars(reference, current, labels, numeric=True)
    values = [str(value) for value in histogram["values"]]
    reference.append(float(histogram.get("other_reference", 0)))
    current.append(float(histogram.get("other_current", 0)))
    if reference[-1] == 0 and current[-1] == 0:
        reference.pop()
        current.pop()
    else:
        values.append("(other values)")
    return _bars(reference, current, values, numeric=False)


def _bars(reference: list[float], current: list[float], labels: list[str], *, numeric: bool) -> str:
    reference_total, current_total = sum(reference) or 1.0, sum(current) or 1.0
    shares = [
        (ref / reference_total, cur / current_total)
        for ref, cur in zip(reference, current, strict=True)
    ]
    peak = max((max(pair) for pair in shares), default=1.0) or 1.0
    bins = max(len(shares), 1)
    slot = (_WIDTH - 2 * _PAD) / bins
    bar = slot * (0.45 if not numeric else 0.5)
    plot_height = _HEIGHT - _AXIS
    shapes = [
        f'<svg role="img" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}">',
        f'<line x1="{_PAD}" y1="{plot_height}" x2="{_WIDTH - _PAD}" y2="{plot_height}" '
        'stroke="#999" stroke-width="1"/>',
    ]
    for index, (ref, cur) in enumerate(shares):
        left = _PAD + index * slot
        for offset, share, color in ((0.0, ref, _REFERENCE_COLOR), (bar, cur, _CURRENT_COLOR)):
            height = (plot_height - 4) * share / peak
            shapes.append(
                f'<rect x="{left + offset:.1f}" y="{plot_height - height:.1f}" '
                f'width="{max(bar - 1, 1):.1f}" height="{height:.1f}" fill="{color}">'
                f"<title>{share:.1%}</title></rect>"
            )
    if numeric:
        shapes.append(
            f'<text x="{_PAD}" y="{plot_height + 14}" font-size="11">{escape(labels[0])}</text>'
            f'<text x="{_WIDTH - _PAD}" y="{plot_height + 14}" font-size="11" '
            f'text-anchor="end">{escape(labels[1])}</text>'
        )
    else:
        for index, label in enumerate(labels):
            x = _PAD + index * slot + slot / 2
            shapes.append(
                f'<text x="{x:.1f}" y="{plot_height + 12}" font-size="10" text-anchor="middle">'
                f"{escape(label[:8] + ('…' if len(label) > 8 else ''))}"
                f"<title>{escape(label)}</title></text>"
            )
    shapes.append("</svg>")
    return "".join(shapes)


def _badge(status: str) -> str:
    css = status if status in ("drift", "no_drift") else "other"
    return f'<span class="badge {css}">{escape(status.replace("_", " "))}</span>'


def _number(value: float | None) -> str:
    return "" if value is None else escape(f"{value:.4g}")


def _short(value: float) -> str:
    return f"{value:.4g}"
