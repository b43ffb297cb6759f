"""The selection report: what was picked from each group and why, as one self-contained HTML
page and a Markdown twin, from what the stages wrote."""

from __future__ import annotations

from pathlib import Path

from delift_dvc.atomic import write_text
from delift_dvc.config import Params

__all__ = ["write_report"]


def write_report(params: Params, out: str | Path, compare: str | Path | None = None) -> dict:
    """Write OUT/selection.html and OUT/selection.md; returns their paths and the flagged groups.
    compare: a `delift-dvc compare --out` folder whose quality tables and figure the page adds."""
    from delift_dvc.reporting.page import html, markdown
    from delift_dvc.reporting.selection import gather, gather_quality

    quality = None if compare is None else gather_quality(compare)
    report = gather(params)
    folder = Path(out)
    page, twin = folder / "selection.html", folder / "selection.md"
    write_text(page, html(report, quality))
    write_text(twin, markdown(report, quality))
    return {"html": str(page), "markdown": str(twin), "n_groups": len(report.groups),
            "flagged": [{"group": g.group, "flag": g.flag, "pool": g.pool, "selected": g.selected}
                        for g in report.flagged], "quality": quality is not None}
