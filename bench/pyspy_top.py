"""Top functions per thread from py-spy raw stacks (issue 17: where the time goes).

``bench/ingest.py --py-spy DIR`` records ``DIR/<phase>/<client id>.txt`` with
``py-spy record --threads --nonblocking --format raw --rate 100`` (no ``--idle``:
a thread blocked in a system call, e.g. waiting for PostgreSQL's reply, is not
sampled, so the counts are the thread's Python time on CPU). Each line is
``thread (TID): NAME;frame;frame;... COUNT``. For every thread this prints its
samples and, by share of that thread's samples, the top leaf functions (self
time) and the top functions anywhere in the stack (inclusive time); ``--only``
keeps inclusive frames whose file contains the string (e.g. ``services/``), ``--lines`` splits self time by source line.

    .venv/bin/python bench/pyspy_top.py /tmp/spy/batch/bench-batch-1.txt --top 12
"""

from __future__ import annotations

import argparse
import collections
import re

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def short(frame: str, line: bool = False) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "python3.11/", "python3.12/", "python3.13/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    at = f":{m['line']}" if line and m["line"] else ""
    return f"{m['func']} ({path}{at})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--lines", action="store_true", help="self: keep the line number")
    p.add_argument("--only", default="", help="inclusive: only frames whose file contains this")
    a = p.parse_args()
    total: collections.Counter[str] = collections.Counter()
    leaf: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    incl: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for path in a.files:
        with open(path) as f:
            for line in f:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                if not stack or not n.isdigit():
                    continue
                frames = stack.split(";")
                head = frames[0]
                thread = head.split(": ", 1)[1] if ": " in head else "(unnamed)"
                count = int(n)
                total[thread] += count
                body = frames[1:]
                if body:
                    leaf[thread][short(body[-1], a.lines)] += count
                for fr in {short(x) for x in body if a.only in x}:
                    incl[thread][fr] += count
    grand = sum(total.values())
    print(f"{grand} samples (100 Hz, on-CPU only)")
    for thread, n in total.most_common():
        print(f"\n== {thread}: {n} samples ({100 * n / grand:.1f} % of all)")
        print("  self:")
        for fr, c in leaf[thread].most_common(a.top):
            print(f"    {100 * c / n:5.1f} %  {fr}")
        print(f"  inclusive{' (' + a.only + ')' if a.only else ''}:")
        for fr, c in incl[thread].most_common(a.top):
            print(f"    {100 * c / n:5.1f} %  {fr}")


if __name__ == "__main__":
    main()
