"""Sample pg_stat_activity wait events of active backends (issue 17: where the time goes).

Every ``--interval`` seconds, one query over one connection: the count of active
client backends by (wait_event_type, wait_event), excluding itself; a backend
that is on CPU (or in a wait PostgreSQL does not instrument) shows as ``CPU``.
Each sample is one line ``unix_time<TAB>datname<TAB>type<TAB>event<TAB>count``,
so a phase of ``bench/ingest.py`` can be cut out afterwards by its time window.
The background writer, WAL writer and checkpointer are sampled too (their
``backend_type`` is the datname column), to see whether WAL writes go there.

    .venv/bin/python bench/pg_waits.py postgresql://postgres@127.0.0.1:55917/postgres \\
        --out /tmp/waits.tsv &
    # ... run the bench, then stop it (kill PID) and summarise a window:
    .venv/bin/python bench/pg_waits.py --summarise /tmp/waits.tsv --start T0 --end T1
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

QUERY = """
SELECT coalesce(datname, backend_type), coalesce(wait_event_type, 'CPU'),
       coalesce(wait_event, 'CPU'), count(*)
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND ((backend_type = 'client backend' AND state = 'active')
       OR backend_type IN ('walwriter', 'checkpointer', 'background writer'))
GROUP BY 1, 2, 3
"""


def sample(url: str, out: str, interval: float) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, open(out, "a") as f:
        while True:
            now = time.time()
            for db, typ, ev, n in conn.execute(QUERY).fetchall():
                f.write(f"{now:.3f}\t{db}\t{typ}\t{ev}\t{n}\n")
            f.flush()
            time.sleep(max(0.0, interval - (time.time() - now)))


def summarise(path: str, start: float, end: float, db: str | None, interval: float) -> None:
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    ticks: set[str] = set()
    with open(path) as f:
        for line in f:
            t, d, typ, ev, n = line.rstrip("\n").split("\t")
            if not start <= float(t) <= end or (db and d != db):
                continue
            ticks.add(t)
            counts[(d, typ, ev)] += int(n)
    total = sum(counts.values())
    # ticks where nothing was active write no line: the window's length gives them
    window = (end - start) / interval if end != float("inf") else len(ticks)
    print(
        f"{window:.0f} ticks of {interval * 1000:.0f} ms, {len(ticks)} with an active backend, "
        f"{total} backend-samples; columns: samples, % of backend-samples, % of ticks"
    )
    for (d, typ, ev), n in counts.most_common(25):
        print(
            f"{n:7d} {100 * n / max(total, 1):5.1f} % {100 * n / max(window, 1):5.1f} %  "
            f"{d:<22} {typ:<10} {ev}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", nargs="?")
    p.add_argument("--out", default="pg_waits.tsv")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--summarise", metavar="TSV")
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--end", type=float, default=float("inf"))
    p.add_argument("--db", help="only this datname / backend_type")
    a = p.parse_args()
    if a.summarise:
        summarise(a.summarise, a.start, a.end, a.db, a.interval)
    elif a.url:
        sample(a.url, a.out, a.interval)
    else:
        sys.exit("a URL to sample or --summarise TSV")


if __name__ == "__main__":
    main()
