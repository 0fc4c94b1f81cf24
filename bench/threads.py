"""CPU per thread of every ingester a bench starts (issue 17: which thread costs what).

Run it next to ``bench/ingest.py`` (or anything that starts ``python -m
services.cli ingest|up``): it polls ``/proc/PID/task/*/stat`` every 0.1 s
and, when such a process exits, prints its CPU seconds per thread, the
thread's Python name taken from ``py-spy dump`` (at most once a second while
a thread has none; py-spy is not a project dependency: ``.venv/bin/pip
install py-spy``; without it the threads are named by id). The last 0.1 s before an exit are not seen.

    .venv/bin/python bench/threads.py --seconds 300 &
    .venv/bin/python bench/ingest.py --messages 200000 --phases single

Divide a thread's seconds by the messages of the phase for µs per message.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ingest import stat_cpu  # bench/ingest.py

NAMED = re.compile(r'Thread (\d+) \(\w+\): "([^"]+)"')


@dataclass
class Watched:
    command: str
    started: float
    names: dict[int, str] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)  # seconds, user + system
    named_at: float = 0.0  # when py-spy last named its threads


def ingesters() -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if "services.cli" in words and ({"ingest", "up"} & set(words)):
            found[int(entry)] = " ".join(words)
    return found


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    task = Path(f"/proc/{pid}/task")
    return {int(t.name): stat_cpu(t / "stat") for t in task.iterdir()}


def names(pid: int, spy: str | None) -> dict[int, str]:
    if spy is None:
        return {}
    dump = subprocess.run(
        [spy, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, text=True
    )
    return {int(m[1]): m[2] for m in NAMED.finditer(dump.stdout)}


def report(pid: int, w: Watched) -> None:
    total = sum(w.cpu.values())
    print(f"pid {pid} ({w.command}): {total:.2f} s of CPU", flush=True)
    for tid, seconds in sorted(w.cpu.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.01:
            print(f"  {w.names.get(tid, f'thread {tid}')}: {seconds:.2f} s", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600, help="stop watching after this long")
    a = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spy_or_none = spy if Path(spy).exists() else None
    watched: dict[int, Watched] = {}
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        alive = ingesters()
        for pid, command in alive.items():
            w = watched.setdefault(pid, Watched(command, time.monotonic()))
            with contextlib.suppress(OSError):  # it exited between the listing and the read
                w.cpu.update(thread_cpu(pid))
            now = time.monotonic()
            unnamed = any(tid not in w.names for tid in w.cpu)
            if spy_or_none and unnamed and now - w.started > 1.0 and now - w.named_at > 1.0:
                w.names.update(names(pid, spy_or_none))  # threads start at different times
                w.named_at = now
        for pid in [p for p in watched if p not in alive]:
            report(pid, watched.pop(pid))
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
