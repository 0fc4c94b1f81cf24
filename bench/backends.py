"""Run a benchmark on plain PostgreSQL and on TimescaleDB in one invocation.

Shared by ``ingest.py`` and ``settlement.py`` (issue 11.7). With
``--backends plain,timescaledb`` the script runs itself once per backend, one
after the other on the same machine with the same generated data (both
scripts' data are deterministic), streams each run's output verbatim, and ends
with one table: every figure next to the raw binary-COPY reference measured in
that run on that backend, and their ratio, so results compare across machines.

- ``plain``: ``--server`` (default ``postgresql://postgres@127.0.0.1:5432``);
- ``timescaledb``: ``--timescaledb-url URL`` or, when none is given, a private
  throwaway cluster started with ``../shared/tools/timescaledb.sh start PORT DIR``
  on a free port and stopped (and removed) afterwards.

Each run reports how its database stores ``samples`` (hypertable or native
partitions, read from ``timescaledb_information.hypertables``); the combined
run fails when the TimescaleDB backend did not get a hypertable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO.parent / "shared" / "tools" / "timescaledb.sh"
BACKENDS = ("plain", "timescaledb")
# options the parent consumes; True: the option takes a value
COPY_TYPES = (
    "varchar",
    "timestamptz",
    "int4",
    "numeric",
    "numeric",
    "numeric",
    "varchar",
    "int8",
    "timestamptz",
)
"""Binary COPY types of the ``samples`` columns, in table order."""
PARENT_OPTIONS = {
    "--backends": True,
    "--timescaledb-url": True,
    "--server": True,
    "--json": True,
    "--plain-private": False,
}


def say(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- pure helpers


def parse_backends(text: str) -> list[str]:
    """``"plain,timescaledb"`` → ``["plain", "timescaledb"]``; unknown or repeated names refused."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--backends needs at least one of: " + ", ".join(BACKENDS))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    if len(set(names)) != len(names):
        raise ValueError("a backend is named twice in --backends")
    return names


def strip_options(argv: Sequence[str], options: dict[str, bool]) -> list[str]:
    """``argv`` without the given options (``--opt value`` and ``--opt=value`` forms)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in options:
            skip = options[name] and "=" not in arg
            continue
        out.append(arg)
    return out


def server_of(url: str) -> str:
    """A server URL without its database: ``…:5432/postgres`` → ``…:5432``.

    The scripts add their own database name, so a query string cannot be kept.
    """
    scheme, sep, rest = url.split("?", 1)[0].partition("://")
    return f"{scheme}{sep}{rest.split('/', 1)[0]}"


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is not positive."""
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


@dataclass(frozen=True)
class Figure:
    """One measure of one backend: a rate compared with that backend's COPY reference.

    ``value`` and ``reference`` are per-second rates (rows, samples or messages);
    ``text`` is how ``value`` prints when it is not a plain rate (a latency).
    """

    measure: str
    value: float | None
    reference: float | None = None
    text: str = ""


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def comparison_rows(figures: dict[str, list[Figure]], backends: Sequence[str]) -> list[list[str]]:
    """Rows ``measure | <backend> | its COPY ref | ratio | …`` in the order measures first appear."""
    measures: list[str] = []
    for b in backends:
        for f in figures.get(b, []):
            if f.measure not in measures:
                measures.append(f.measure)
    head = ["measure"]
    for b in backends:
        head += [b, "its COPY ref", "ratio"]
    rows = [head]
    for m in measures:
        row = [m]
        for b in backends:
            f = next((x for x in figures.get(b, []) if x.measure == m), None)
            if f is None:
                row += ["(not measured)", "-", "-"]
            else:
                row += [
                    f.text or fmt_rate(f.value),
                    fmt_rate(f.reference),
                    fmt_ratio(ratio(f.value, f.reference) if not f.text else None),
                ]
        rows.append(row)
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    """The rows as a GitHub table (first row is the header)."""
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


# --------------------------------------------------------------------------- COPY references


def timed_copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> float:
    """Seconds to binary-COPY ``rows`` from memory into ``table`` (emptied first) and commit."""
    conn.execute(f"TRUNCATE {table}")
    conn.commit()
    started = time.perf_counter()
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(list(types))
        for r in rows:
            copy.write_row(r)
    conn.commit()
    return time.perf_counter() - started


def copy_rates(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    repeats: int,
) -> tuple[float, list[float]]:
    """The median rows/s of ``repeats`` timed COPYs (a COPY lasts a second or two, so one
    pass on a shared machine is noisy), and every pass's rows/s."""
    rates = [len(rows) / timed_copy(conn, table, columns, types, rows) for _ in range(repeats)]
    return statistics.median(rates), rates


def rates_text(rates: Sequence[float]) -> str:
    return " ".join(f"{r:,.0f}" for r in rates)


def create_reference_table(conn: psycopg.Connection[Any], name: str) -> None:
    """A plain table shaped like ``samples`` with its primary key: the COPY reference's target."""
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (LIKE samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (device_id, ts)")
    conn.commit()


def create_reference_hypertable(conn: psycopg.Connection[Any], name: str, like: str) -> str | None:
    """On TimescaleDB, a hypertable like ``like`` chunked as ``samples`` is; else None.

    Returns the chunk interval (text) when the table was made.
    """
    row = (
        conn.execute(
            "SELECT d.time_interval FROM pg_extension e, timescaledb_information.dimensions d "
            "WHERE e.extname = 'timescaledb' AND d.hypertable_name = 'samples'"
        ).fetchone()
        if extension(conn)
        else None
    )
    if row is None:
        return None
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (LIKE {like} INCLUDING ALL)")
    conn.execute("SELECT create_hypertable(%s, 'ts', chunk_time_interval => %s)", (name, row[0]))
    conn.commit()
    return str(row[0])


def extension(conn: psycopg.Connection[Any]) -> str | None:
    """The installed TimescaleDB version of this database, or None."""
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    return str(row[0]) if row else None


# --------------------------------------------------------------------------- the machine


def proc_field(path: str, name: str) -> str:
    """The value of the first ``name: value`` line of a /proc file ("" if absent)."""
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def host_info() -> dict[str, str]:
    mem_kb = int((proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0])
    return {
        "cpu": proc_field("/proc/cpuinfo", "model name") or "?",
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024**2:.1f} GiB",
        "load_average": load_average(),
    }


def server_info(server: str) -> dict[str, str]:
    """PostgreSQL version, the TimescaleDB version available to it, and the settings that matter."""
    with psycopg.connect(f"{server.rstrip('/')}/postgres", autocommit=True) as conn:

        def one(q: str) -> str:
            row = conn.execute(q).fetchone()  # type: ignore[arg-type]
            return "" if row is None or row[0] is None else str(row[0])

        out = {
            "postgresql": one("SHOW server_version"),
            "timescaledb_available": one(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
            )
            or "not installed",
            "shared_preload_libraries": one(
                "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'"
            ),
        }
        for name in ("shared_buffers", "synchronous_commit", "max_wal_size", "fsync", "jit"):
            out[name] = one(f"SHOW {name}")
    return out


def storage_report(url: str) -> dict[str, Any]:
    """How this database stores ``samples``: the hypertable row, chunks, or native partitions."""
    with psycopg.connect(url, autocommit=True) as conn:
        ext = extension(conn)
        out: dict[str, Any] = {"timescaledb": ext}
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = 'samples'::regclass"
        ).fetchone()
        out["samples_relkind"] = kind[0] if kind else None
        hypertables: list[dict[str, Any]] = []
        if ext:
            cur = conn.execute(
                "SELECT hypertable_schema, hypertable_name, num_dimensions, num_chunks, "
                "compression_enabled FROM timescaledb_information.hypertables"
            )
            names = [d.name for d in cur.description or []]
            hypertables = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            dim = conn.execute(
                "SELECT column_name, time_interval::text FROM timescaledb_information.dimensions "
                "WHERE hypertable_name = 'samples'"
            ).fetchall()
            out["dimensions"] = [f"{c} every {i}" for c, i in dim]
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE is_compressed) "
                "FROM timescaledb_information.chunks WHERE hypertable_name = 'samples'"
            ).fetchone()
            out["chunks"], out["compressed_chunks"] = (int(row[0]), int(row[1])) if row else (0, 0)
            jobs = conn.execute(
                "SELECT j.proc_name, s.total_runs, s.total_failures "
                "FROM timescaledb_information.jobs j "
                "LEFT JOIN timescaledb_information.job_stats s USING (job_id) "
                "WHERE j.hypertable_name = 'samples'"
            ).fetchall()
            out["jobs"] = [f"{p}: {r or 0} runs, {f or 0} failures" for p, r, f in jobs]
            errors = conn.execute(
                "SELECT DISTINCT proc_name, sqlerrcode, err_message "
                "FROM timescaledb_information.job_errors"
            ).fetchall()
            out["job_errors"] = [f"{p}: {c} {m}" for p, c, m in errors]
        out["hypertables"] = hypertables
        out["samples_is_hypertable"] = any(h["hypertable_name"] == "samples" for h in hypertables)
        if not out["samples_is_hypertable"]:
            row = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass"
            ).fetchone()
            out["partitions"] = int(row[0]) if row else 0
    return out


def storage_text(s: dict[str, Any]) -> str:
    if s["samples_is_hypertable"]:
        h = next(h for h in s["hypertables"] if h["hypertable_name"] == "samples")
        return (
            f"samples is a TimescaleDB {s['timescaledb']} hypertable "
            f"(timescaledb_information.hypertables: {json.dumps(h, default=str)}; "
            f"{', '.join(s['dimensions'])}; {s['chunks']} chunks, {s['compressed_chunks']} "
            f"compressed; jobs: {'; '.join(s['jobs']) or 'none'}"
            + (f"; job errors: {'; '.join(s['job_errors'])}" if s["job_errors"] else "")
            + ")"
        )
    ext = f", timescaledb {s['timescaledb']} installed" if s["timescaledb"] else ""
    return (
        f"samples is NOT a hypertable: relkind {s['samples_relkind']!r}, "
        f"{s.get('partitions', 0)} native partitions{ext}"
    )


# --------------------------------------------------------------------------- backends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_cluster(preload: bool = True) -> Iterator[str]:
    """A throwaway cluster (free port, own directory) of the TimescaleDB build; yields its
    server URL. ``preload=False``: TimescaleDB installed but not preloaded, so viu falls
    back to native partitions: plain PostgreSQL with the same binaries, settings and disk,
    and a WAL of its own (the machine's server is shared with other users' tests)."""
    if not TOOL.is_file():
        raise SystemExit(f"{TOOL} not found: pass --timescaledb-url")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="viu-bench-timescaledb-"))
    flag = [] if preload else ["--no-preload"]
    say(f"starting a private cluster: bash {TOOL} start {port} {work} {' '.join(flag)}")
    started = time.perf_counter()
    try:
        done = subprocess.run(
            ["bash", str(TOOL), "start", str(port), str(work), *flag],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            raise SystemExit(f"timescaledb.sh start failed: {done.stderr.strip()[-2000:]}")
        url = lines[-1].strip()
        say(f"private cluster at {url} ({time.perf_counter() - started:.1f} s to start)")
        yield server_of(url)
    finally:
        subprocess.run(["bash", str(TOOL), "stop", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
        say(f"stopped the private cluster in {work}")


def add_options(p: Any, default_server: str) -> None:
    """The options every both-backends script takes (argparse parser ``p``)."""
    p.add_argument(
        "--backends",
        help="comma-separated: plain,timescaledb (one run per backend, then one comparison "
        "table); without it, one run on --server",
    )
    p.add_argument(
        "--timescaledb-url",
        help="TimescaleDB server URL without a database for --backends …timescaledb "
        "(default: a private cluster from ../shared/tools/timescaledb.sh)",
    )
    p.add_argument(
        "--server", default=default_server, help="PostgreSQL URL without a database (plain)"
    )
    p.add_argument(
        "--plain-private",
        action="store_true",
        help="plain = a private cluster of the same build without TimescaleDB preloaded "
        "(own WAL, same settings as the private TimescaleDB one) instead of --server",
    )
    p.add_argument(
        "--copy-repeats", type=int, default=3, help="COPY reference passes (median reported)"
    )
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON")


Extract = Callable[[dict[str, Any]], list[Figure]]


def run_backends(script: Path, argv: Sequence[str], args: Any, extract: Extract, title: str) -> int:
    """Run ``script`` once per backend in ``args.backends``, then print the comparison.

    ``extract`` turns one run's JSON into the figures of the final table.
    """
    backends = parse_backends(args.backends)
    rest = strip_options(argv, PARENT_OPTIONS)
    say(f"command: {Path(sys.executable).name} {script.relative_to(REPO)} {' '.join(argv)}")
    say(f"started {datetime.now(UTC).isoformat(timespec='seconds')}")
    host = host_info()
    say(
        f"host: {host['cpu']}, nproc {host['nproc']}, {host['memory']} RAM, "
        f"load average {host['load_average']}"
    )
    runs: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    out_dir = Path(tempfile.mkdtemp(prefix="viu-bench-backends-"))
    try:
        for backend in backends:
            with backend_server(backend, args) as server:
                info = server_info(server)
                load_before = load_average()
                say("")
                say(f"==================== backend {backend}: {server}")
                say(f"server: {json.dumps(info)}")
                say(f"load average before: {load_before}")
                out = out_dir / f"{backend}.json"
                child = [sys.executable, str(script), *rest, "--server", server, "--json", str(out)]
                code = subprocess.run(child, cwd=REPO, check=False).returncode
                load_after = load_average()
                say(f"load average after: {load_after}")
                if code != 0 or not out.is_file():
                    failures.append(f"{backend}: the run exited with {code}")
                    continue
                data = json.loads(out.read_text())
                data |= {"server": info, "load_before": load_before, "load_after": load_after}
                runs[backend] = data
                storage = data.get("storage") or {}
                if backend == "timescaledb" and not storage.get("samples_is_hypertable"):
                    failures.append("timescaledb: viu did NOT store samples in a hypertable")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    say("")
    say(f"==================== {title}: both backends, same machine, same data")
    say(
        f"host: {host['cpu']}, nproc {host['nproc']}, {host['memory']} RAM; load average at "
        f"start {host['load_average']}, at end {load_average()}"
    )
    for backend, data in runs.items():
        info = data["server"]
        say(
            f"{backend}: PostgreSQL {info['postgresql']}, TimescaleDB "
            f"{(data.get('storage') or {}).get('timescaledb') or 'not used'} "
            f"(available: {info['timescaledb_available']}); shared_buffers "
            f"{info['shared_buffers']}, synchronous_commit {info['synchronous_commit']}, "
            f"max_wal_size {info['max_wal_size']}; load {data['load_before']} → "
            f"{data['load_after']}"
        )
        if data.get("storage"):
            say(f"{backend}: {storage_text(data['storage'])}")
    figures = {b: extract(d) for b, d in runs.items()}
    say("")
    say(markdown_table(comparison_rows(figures, [b for b in backends if b in runs])))
    if args.json:
        Path(args.json).write_text(json.dumps({"host": host, "runs": runs}, indent=2, default=str))
    for f in failures:
        say(f"FAILED {f}")
    say(f"finished {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 1 if failures else 0


@contextmanager
def backend_server(backend: str, args: Any) -> Iterator[str]:
    """The server URL (no database) a backend's run uses, started and stopped if private."""
    if backend == "plain" and args.plain_private:
        with private_cluster(preload=False) as url:
            yield url
    elif backend == "timescaledb" and not args.timescaledb_url:
        with private_cluster() as url:
            yield url
    else:
        yield server_of(args.server if backend == "plain" else args.timescaledb_url)
