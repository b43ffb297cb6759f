"""Running commands that start Ray inside a private network namespace with only loopback.

Offline, Ray still binds the machine's external address and probes a cloud metadata address;
inside `unshare -n` it only sees 127.0.0.1. Tests that start Ray skip with a reason where
`unshare` is not permitted, and fail instead when CI is set.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def netns_available() -> bool:
    try:
        done = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def require_netns() -> None:
    if netns_available():
        return
    reason = "unshare -n is not permitted here (Ray tests need a private loopback-only network namespace)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this must not be skipped")
    pytest.skip(reason)


def ray_env() -> dict[str, str]:
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "DVC_NO_ANALYTICS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def netns_command(args: list[str]) -> list[str]:
    """`args` wrapped to run in a new network namespace with loopback up."""
    inner = "ip link set lo up && exec " + " ".join(shlex.quote(str(a)) for a in args)
    return ["unshare", "-n", "sh", "-c", inner]


def run_in_netns(args: list[str], cwd: Path, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(netns_command(args), cwd=cwd, capture_output=True, text=True, env=ray_env(),
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}): {done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done
