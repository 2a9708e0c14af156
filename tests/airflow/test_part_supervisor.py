"""The supervisor both deployment scripts share (scripts/airflow-lib.sh): a part that dies, even by
SIGKILL, is named and restarted; one that keeps dying stops everything with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The scripts' own shell options: a failing command inside `supervise` must not end it.
SCRIPT = f"""
set -euo pipefail
. {REPO}/scripts/airflow-lib.sh
LOG_DIR="$1"
MAX_RESTARTS=2
start_part sleeper sleep 300
echo "pid ${{PART_PID[sleeper]}}"
supervise
"""


def _pid(lines: list[str], after: int) -> int:
    found = [int(line.split()[1]) for line in lines if line.startswith("pid ")]
    return found[after] if len(found) > after else 0


def test_a_killed_part_is_named_restarted_and_then_given_up_on(tmp_path):
    proc = subprocess.Popen(["bash", "-c", SCRIPT, "supervise-test", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = int(proc.stdout.readline().split()[1])
        seen: list[str] = []
        for _ in range(3):  # the first run, then both restarts
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while True:
                line = proc.stdout.readline()
                assert line and time.monotonic() < deadline, seen
                seen.append(line)
                if "restarting sleeper" in line or "stopping everything" in line:
                    break
            if "stopping everything" in line:
                break
            time.sleep(0.3)
            first = int(subprocess.run(["pgrep", "-n", "-f", "sleep 300", "-s", str(proc.pid)],
                                       capture_output=True, text=True).stdout.split()[0])
        text = "".join(seen)
        assert "sleeper exited with status 137 (killed: SIGKILL" in text
        assert text.count("restarting sleeper") == 2
        assert "sleeper died 3 times; stopping everything" in text
        assert proc.wait(20) == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
