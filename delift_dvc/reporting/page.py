"""The selection report as one self-contained HTML page (inline CSS and SVG, no script, nothing
fetched) and its Markdown twin for CI comments."""

from __future__ import annotations

import base64
from html import escape

from delift_dvc.reporting.selection import Quality, SelectionReport, Shown

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.25rem .6rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.flag{color:#a40000;font-weight:600;white-space:nowrap}.warning{color:#a40000;font-weight:600}.bar{display:inline-block;height:.7rem;vertical-align:middle}
.pool{background:#b8c7d9}.picked{background:#2c6fbb}.summary td{border:none;padding:.1rem .6rem}
.sample{font-size:.9rem}.muted{color:#666}svg{display:block;margin:.5rem 0 1.5rem}#quality img{max-width:100%}
"""


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _facts(r: SelectionReport) -> list[tuple[str, str]]:
    facts = [("method", r.method), ("mode", r.mode), ("budget", str(r.budget)), ("allocation", r.allocation),
             ("selected", f"{r.n_selected} of {r.n_samples} samples"),
             ("objective", f"{r.objective_name} = {r.objective:.6g}"), ("scorer", r.scorer or "none (no LM values)"),
             ("data version", r.version),
             ("groups", f"{len(r.groups)}, {sum(g.flag == 'no pick' for g in r.groups)} without a pick")]
    if r.mode == "continual" or r.counts.get("n_kept") or r.counts.get("n_removed"):
        facts.append(("data update", f"{r.counts.get('n_new', 0)} new, {r.counts.get('n_kept', 0)} kept, "
                                     f"{r.counts.get('n_removed', 0)} removed samples; subset: {r.n_kept} kept, "
                                     f"{r.n_added} added"))
    return facts


def _line_svg(values: list[float], width: int = 640, height: int = 180) -> str:
    """A polyline of the cumulative gains from 0 before the first pick, with its axes' end values."""
    total, points = 0.0, [0.0]
    for v in values:
        total += v
        points.append(total)
    top = max(points) or 1.0
    step = width / max(1, len(points) - 1)
    coords = " ".join(f"{k * step:.1f},{height - p / top * (height - 10):.1f}" for k, p in enumerate(points))
    return (f'<svg id="gains" viewBox="-40 -10 {width + 60} {height + 30}" width="{width + 60}" '
            f'height="{height + 30}" role="img"><title>cumulative gain over picks</title>'
            f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>'
            f'<line x1="0" y1="0" x2="0" y2="{height}" stroke="#999"/>'
            f'<polyline fill="none" stroke="#2c6fbb" stroke-width="2" points="{coords}"/>'
            f'<text x="-36" y="10" font-size="11">{top:.3g}</text>'
            f'<text x="{width - 30}" y="{height + 16}" font-size="11">pick {len(points) - 1}</text></svg>')


def _bars_svg(histogram: list[tuple[float, int]], width: int = 640, height: int = 160) -> str:
    """Vertical bars of the UF histogram (bin centres on the x axis, its first and last labelled)."""
    top = max(c for _, c in histogram) or 1
    w = width / len(histogram)
    bars = "".join(f'<rect x="{k * w:.1f}" y="{height - c / top * height:.1f}" width="{max(w - 1, 1):.1f}" '
                   f'height="{c / top * height:.1f}" fill="#2c6fbb"><title>UF {x:+.3f}: {c} pairs</title></rect>'
                   for k, (x, c) in enumerate(histogram))
    return (f'<svg id="utility" viewBox="0 -5 {width} {height + 25}" width="{width}" height="{height + 25}" '
            f'role="img"><title>utility histogram</title>{bars}'
            f'<text x="0" y="{height + 16}" font-size="11">{histogram[0][0]:+.2f}</text>'
            f'<text x="{width / 2 - 10:.0f}" y="{height + 16}" font-size="11">UF</text>'
            f'<text x="{width - 40}" y="{height + 16}" font-size="11">{histogram[-1][0]:+.2f}</text></svg>')


def _sample_rows(samples: list[Shown]) -> str:
    return "".join(
        f'<tr class="sample"><td class="n">{"" if s.rank is None else s.rank}</td><td>{escape(s.prompt)}</td>'
        f'<td>{escape(s.response)}</td><td class="n">{_number(s.gain)}</td><td class="n">{_number(s.mean_uf)}</td>'
        f'<td class="muted">{escape(s.source)}</td></tr>'
        for s in samples)


def _quality_html(quality: Quality | None) -> str:
    """The compare section: its Markdown rendered (tables included; raw HTML in it is escaped)
    and its figure inline as a data URI, so the page still fetches nothing."""
    if quality is None:
        return ""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(quality.markdown)
    figure = ("" if quality.figure is None else
              f'<img id="quality-vs-budget" alt="quality against budget" '
              f'src="data:image/png;base64,{base64.b64encode(quality.figure).decode("ascii")}">')
    return f'<h2>Quality after compare</h2><div id="quality">{figure}{body}</div>'


def html(report: SelectionReport, quality: Quality | None = None) -> str:
    """The whole page: facts, composition bars with flags, gains curve, utility histogram, and
    per group its first picks and a few unpicked samples; with `quality`, the comparison's
    tables and figure at the end."""
    def shares(g) -> tuple[float, float]:
        return g.pool / max(1, report.n_samples), g.selected / max(1, report.n_selected)

    biggest = max((max(shares(g)) for g in report.groups), default=1.0) or 1.0
    rows = "".join(
        f'<tr data-group="{escape(g.group)}"><td>{escape(g.group)}</td><td class="n">{g.pool}</td>'
        f'<td class="n">{g.selected}</td><td class="n">{g.expected:.1f}</td>'
        f'<td><span class="bar pool" style="width:{shares(g)[0] / biggest * 16:.2f}rem"></span> '
        f'{100 * shares(g)[0]:.1f} %<br><span class="bar picked" style="width:{shares(g)[1] / biggest * 16:.2f}rem">'
        f'</span> {100 * shares(g)[1]:.1f} %</td><td class="flag">{escape(g.flag)}</td></tr>' for g in report.groups)
    facts = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in _facts(report))
    flagged = report.flagged
    warning = (f'<p class="warning">{len(flagged)} of {len(report.groups)} groups have no or few picks: '
               f'{escape(", ".join(g.group for g in flagged))}</p>' if flagged else
               f"<p>Every group has at least half of its {report.allocation} share of picks.</p>")
    gains = (_line_svg(report.gains) if report.gains and any(report.gains) else
             '<p class="muted">No gains: this method picks without an objective.</p>')
    hist = (_bars_svg(report.histogram) if report.histogram and any(c for _, c in report.histogram) else
            '<p class="muted">No utility histogram: no LM values were read for this subset.</p>')
    head = ("<tr><th>rank</th><th>prompt</th><th>response</th><th>gain</th>"
            "<th>mean UF as example</th><th>source</th></tr>")
    details = "".join(
        f'<details data-group="{escape(g.group)}"><summary>{escape(g.group)}: {g.selected} of {g.pool} picked'
        f'{" — " + escape(g.flag) if g.flag else ""}</summary>'
        f'<h4>first picks</h4><table>{head}{_sample_rows(g.picks) or "<tr><td colspan=6>none</td></tr>"}</table>'
        f'<h4>not picked</h4><table>{head}{_sample_rows(g.unpicked) or "<tr><td colspan=6>none</td></tr>"}'
        f'</table></details>' for g in report.groups)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>delift-dvc selection report</title>
<style>{STYLE}</style></head><body>
<h1>Selection report</h1>
<table class="summary">{facts}</table>
<h2>Composition per group</h2>{warning}
<table id="composition"><tr><th>group</th><th>pool</th><th>picked</th><th>{report.allocation}</th>
<th>share of pool / of subset</th><th>flag</th></tr>{rows}</table>
<h2>Gains</h2>{gains}
<h2>Utility of the stored pairs</h2>{hist}
<h2>Samples per group</h2>
<p class="muted">Mean UF as example: the sample's average utility as the one-shot example over the
stored pairs of this data version. Unpicked samples are the first by content id, a draw
independent of utility.</p>
{details}
{_quality_html(quality)}
</body></html>
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(report: SelectionReport, quality: Quality | None = None) -> str:
    """The Markdown twin: facts, the composition table with flags, the flagged groups; with
    `quality`, the comparison's Markdown as compare wrote it."""
    lines = ["# Selection report", ""]
    lines += [f"- **{k}**: {_cell(v)}" for k, v in _facts(report)]
    lines += ["", f"| group | pool | picked | {report.allocation} | flag |", "|---|---:|---:|---:|---|"]
    lines += [f"| {_cell(g.group)} | {g.pool} | {g.selected} | {g.expected:.1f} | {g.flag} |" for g in report.groups]
    flagged = report.flagged
    lines += ["", (f"**{len(flagged)} of {len(report.groups)} groups have no or few picks:** "
                   + ", ".join(_cell(g.group) for g in flagged)) if flagged else
              f"Every group has at least half of its {report.allocation} share of picks."]
    if report.gains and any(report.gains):
        lines += ["", f"Gains: first {report.gains[0]:.4g}, last {report.gains[-1]:.4g}, "
                      f"total {sum(report.gains):.4g} over {len(report.gains)} picks."]
    if quality is not None:
        lines += ["", "## Quality after compare", "", quality.markdown.rstrip("\n")]
    return "\n".join(lines) + "\n"
