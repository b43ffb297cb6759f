"""progress.Reporter: phase lines, periodic progress lines in a log, nothing when quiet."""

from __future__ import annotations

import io

from delift_dvc import progress
from delift_dvc.progress import Reporter


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_log_lines_carry_count_rate_and_eta(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    out = io.StringIO()
    r = Reporter("score", interval=10, stream=out)
    r.phase("100 pairs to score")
    r.start(100, "pair")
    clock.now += 5
    r.update(10)  # before the interval: no line
    clock.now += 15
    r.update(30)  # 40 done in 20 s: 2 pairs/s, 60 left: 30 s
    clock.now += 20
    r.update(60)  # done: no progress line for the last update
    assert r.finish() == 40.0
    assert out.getvalue().splitlines() == [
        "score: 100 pairs to score",
        "score: 40/100 pairs (40 %), 2.00 pairs/s, ETA 30 s",
    ]
    assert "\r" not in out.getvalue()


def test_quiet_prints_nothing_and_durations_read_well():
    out = io.StringIO()
    r = Reporter("score", quiet=True, interval=0, stream=out)
    r.phase("x")
    r.start(5, "pair")
    r.update(5)
    r.finish()
    assert out.getvalue() == ""
    assert [progress._duration(s) for s in (42, 125, 7300)] == ["42 s", "2 min 05 s", "2 h 01 min"]


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "3")
    assert Reporter("x").interval == 3.0
    monkeypatch.setenv(progress.INTERVAL_ENV, "soon")
    assert Reporter("x").interval == 30.0
