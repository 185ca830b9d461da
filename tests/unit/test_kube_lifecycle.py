"""Kube tier: the local cluster's processes never outlive the harness that started them.

Real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok started by
LocalCluster in a child Python process, which is then killed with SIGKILL (no teardown runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lfharness.core.wait import retry
from lfharness.testing.cluster import binaries

pytestmark = pytest.mark.kube

_REASON = binaries.unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_harness_leaves_no_cluster_process_behind(tmp_path):
    """Issue 16 item 2 (torn down by PID, nothing survives the session): when the process holding
    the cluster is killed with SIGKILL, so that no teardown runs, every cluster process is gone
    within seconds (each is tied to the harness; the API server does not wait out its etcd)."""
    pids_file = tmp_path / "pids.json"
    script = textwrap.dedent(f"""
        import json, pathlib, time
        from lfharness.testing.cluster import controlplane
        cluster = controlplane.LocalCluster(pathlib.Path({str(tmp_path / 'cluster')!r})).__enter__()
        pathlib.Path({str(pids_file)!r}).write_text(json.dumps(cluster.pids))
        time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        pids = retry(lambda: json.loads(pids_file.read_text()), timeout=90, interval=0.5,
                     what="the cluster up in the child", retry_on=(OSError, ValueError))
        assert set(pids) == set(binaries.BINARIES)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    started = time.monotonic()
    left = retry(lambda: {name: pid for name, pid in pids.items() if _alive(pid)}, timeout=20, interval=0.5,
                 what="every cluster process gone", validator=lambda alive: not alive)
    assert left == {} and time.monotonic() - started < 20
