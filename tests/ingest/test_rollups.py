"""Rollups always equal a brute-force aggregation of the stored samples (spec §3.1 inputs).

A model-based property test: random batches with repeats, corrections,
same-identity items within one batch, and annotations in between; after each
run the samples table equals "last write wins" and every 15-minute rollup
equals the sum computed here in Python from the samples and annotations.
Writes append rollup deltas and folds move them into ``rollups`` at random
points (migration 0014): what readers see (``rollup_totals``) is exact at
every point, and so is ``rollups`` itself after a fold.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from schemas.telemetry import Annotation
from services.ingest import annotations as notes
from services.ingest import pipeline, rollups
from tests.ingest.conftest import message, payload, register, rows

START = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)  # spans a UTC month boundary
DEVICES = ("d1", "d2")
CAUSES = ("unplanned", "planned", "customer", "external")
FIELDS = ("interval_s", "uptime_min", "quality_min", "throughput", "downtime_cause")


@st.composite
def samples(draw: Any) -> dict[str, Any]:
    interval = draw(st.sampled_from([60, 300, 900]))
    uptime = Decimal(draw(st.integers(0, interval // 15))) / 4
    quality = uptime * Decimal(draw(st.integers(0, 4))) / 4
    return {
        "device": draw(st.sampled_from(DEVICES)),
        "ts": int((START + timedelta(minutes=5 * draw(st.integers(0, 40)))).timestamp()),
        "interval_s": interval,
        "uptime_min": uptime,
        "quality_min": quality,
        "throughput": Decimal(draw(st.integers(0, 2000))) / 8,
        "downtime_cause": draw(st.sampled_from(CAUSES)),
    }


annotation_ops = st.builds(
    lambda d, a, n, c: ("annotate", d, a, n, c),
    st.sampled_from(DEVICES),
    st.integers(0, 40),
    st.integers(1, 12),
    st.sampled_from(CAUSES),
)
fold_ops = st.just(("fold",))
batch_ops = st.builds(
    lambda items, repeat: ("write", items, repeat),
    st.lists(samples(), min_size=1, max_size=12),
    st.booleans(),
)


def _reset(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE samples, sample_revisions, rollups, rollup_deltas, annotations, "
                "dead_letters, ingest_counters"
            )
        )
        known = conn.execute(text("SELECT count(*) FROM devices")).scalar_one()
    if not known:
        register(db, *DEVICES)


def _write(db: Engine, items: list[dict[str, Any]], model: dict[Any, dict[str, Any]]) -> None:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        body = {k: v for k, v in item.items() if k != "device"}
        by_device[item["device"]].append(body)
        model[(item["device"], item["ts"])] = body
    pipeline.ingest(db, [message(d, payload(*b, batch=True)) for d, b in by_device.items()])


def _annotate(db: Engine, device: str, slot: int, length: int, cause: str) -> None:
    start = START + timedelta(minutes=5 * slot - 2)
    note = Annotation.model_validate(
        {
            "device_id": device,
            "from": start.isoformat(),
            "to": (start + timedelta(minutes=5 * length)).isoformat(),
            "cause": cause,
        }
    )
    with db.begin() as conn:
        notes.create(conn, note, "test")


def expected_rollups(db: Engine) -> dict[tuple[str, datetime], dict[str, Any]]:
    """The brute-force reference: aggregate every stored sample in Python."""
    anns = rows(db, "SELECT * FROM annotations ORDER BY created_at, id")
    out: dict[tuple[str, datetime], dict[str, Any]] = {}
    for s in rows(db, "SELECT * FROM samples"):
        cause = s["downtime_cause"]
        for a in anns:
            if a["device_id"] == s["device_id"] and a["from_ts"] <= s["ts"] < a["to_ts"]:
                cause = a["cause"]
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        bucket = epoch + (s["ts"] - epoch) // timedelta(minutes=15) * timedelta(minutes=15)
        r = out.setdefault((s["device_id"], bucket), defaultdict(Decimal))
        r["samples"] += 1
        r["reported_s"] += s["interval_s"]
        for f in ("uptime_min", "quality_min", "throughput"):
            r[f] += s[f]
        r[f"down_{cause}"] += Decimal(s["interval_s"]) / 60 - s["uptime_min"]
    cols = [
        "samples",
        "reported_s",
        "uptime_min",
        "quality_min",
        "throughput",
        *(f"down_{c}" for c in CAUSES),
    ]
    return {k: {c: v[c] for c in cols} for k, v in out.items()}


def stored_rollups(
    db: Engine, table: str = "rollup_totals"
) -> dict[tuple[str, datetime], dict[str, Any]]:
    return {
        (r.pop("device_id"), r.pop("bucket")): r
        for r in rows(db, f"SELECT * FROM {table}")
        if r.pop("last_received_at") is not None
    }


def fold(db: Engine) -> None:
    with db.begin() as conn:
        rollups.fold(conn)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(st.one_of(batch_ops, batch_ops, annotation_ops, fold_ops), min_size=1, max_size=7)
)
def test_rollups_equal_aggregation_of_samples(db: Engine, ops: list[Any]) -> None:
    _reset(db)
    model: dict[Any, dict[str, Any]] = {}
    for op in ops:
        if op[0] == "write":
            _, items, repeat = op
            _write(db, items + (items[:2] if repeat else []), model)
        elif op[0] == "fold":
            fold(db)
        else:
            _annotate(db, *op[1:])
    stored = {
        (r["device_id"], int(r["ts"].timestamp())): {f: r[f] for f in FIELDS}
        for r in rows(db, "SELECT * FROM samples")
    }
    assert stored == {k: {f: v[f] for f in FIELDS} for k, v in model.items()}
    expected = expected_rollups(db)
    assert stored_rollups(db) == expected
    fold(db)
    assert stored_rollups(db, "rollups") == expected
    assert rows(db, "SELECT count(*) AS n FROM rollup_deltas") == [{"n": 0}]


def test_rebuild_from_scratch_matches_incremental_rollups(db: Engine) -> None:
    register(db, "d1")
    items = [
        {
            "ts": int((START + timedelta(minutes=m)).timestamp()),
            "interval_s": 300,
            "uptime_min": Decimal(m % 5),
            "quality_min": 0,
            "throughput": m,
        }
        for m in range(0, 180, 5)
    ]
    pipeline.ingest(db, [message("d1", payload(*items))])
    pipeline.ingest(db, [message("d1", payload(items[3] | {"throughput": 0}))])
    incremental = stored_rollups(db)
    fold(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM rollups"))
        from services.ingest.rollups import rebuild_rollups

        rebuild_rollups(conn, "d1", START - timedelta(days=1), START + timedelta(days=1))
    assert stored_rollups(db) == incremental == expected_rollups(db)


def test_a_rollup_rows_next_version_stays_on_its_page(db: Engine) -> None:
    """Migration 0012: a full page of rollups still has room for the updates of its rows.

    Every fold updates the buckets written since the last one, a few rows of
    each page (here every fourth); a version that has to move to another page
    costs a new index entry and more WAL.
    """
    register(db, "d1")
    buckets = range(120)  # more rows than a page holds

    def at(bucket: int, minute: int) -> dict[str, Any]:
        ts = START + timedelta(minutes=15 * bucket + minute)
        one = {"interval_s": 60, "uptime_min": 1, "quality_min": 1, "throughput": 1}
        return one | {"ts": int(ts.timestamp())}

    def pages() -> dict[datetime, float]:
        sql = "SELECT bucket, (ctid::text::point)[0] AS page FROM rollups"
        return {r["bucket"]: r["page"] for r in rows(db, sql)}

    pipeline.ingest(db, [message("d1", payload(*(at(b, 0) for b in buckets)))])
    fold(db)
    before = pages()
    assert len(set(before.values())) > 1  # the rows fill more than one page
    updated = buckets[::4]
    pipeline.ingest(db, [message("d1", payload(*(at(b, 1) for b in updated)))])
    fold(db)
    assert pages() == before
    assert rows(db, "SELECT sum(samples) AS n FROM rollups") == [{"n": len(buckets) + len(updated)}]


def test_an_annotation_over_deltas_not_folded_yet_counts_each_sample_once(db: Engine) -> None:
    """The rebuild of an annotation's buckets replaces their unfolded deltas too."""
    register(db, "d1")
    items = [
        {
            "ts": int((START + timedelta(minutes=m)).timestamp()),
            "interval_s": 300,
            "uptime_min": 1,
            "quality_min": 1,
            "throughput": 1,
        }
        for m in range(0, 60, 5)
    ]
    pipeline.ingest(db, [message("d1", payload(*items))])
    assert rows(db, "SELECT count(*) AS n FROM rollup_deltas") != [{"n": 0}]
    _annotate(db, "d1", 0, 6, "planned")
    expected = expected_rollups(db)
    assert sum(r["down_planned"] for r in expected.values()) == 6 * 4
    assert stored_rollups(db) == expected
    fold(db)
    assert stored_rollups(db, "rollups") == expected


def test_folds_beside_writers_lose_nothing_and_count_nothing_twice(db: Engine) -> None:
    """A fold moves what its snapshot sees, in one statement; deltas committed meanwhile wait."""
    devices = ("d1", "d2", "d3", "d4")
    register(db, *devices)
    writing = threading.Event()
    folds: list[int | None] = []

    def folder() -> None:
        while writing.is_set():
            with db.begin() as conn:
                folds.append(rollups.fold(conn, wait=False))

    def writer(device: str) -> None:
        for m in range(0, 100 * 5, 5):
            ts = int((START + timedelta(minutes=m)).timestamp())
            one = {"ts": ts, "interval_s": 300, "uptime_min": 4, "quality_min": 3}
            pipeline.ingest(db, [message(device, payload(one | {"throughput": m}))])

    writing.set()
    threads = [threading.Thread(target=folder) for _ in range(2)]
    threads += [threading.Thread(target=writer, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads[2:]:
        t.join()
    writing.clear()
    for t in threads[:2]:
        t.join()
    assert len([n for n in folds if n]) > 5  # folds ran while the writers wrote
    expected = expected_rollups(db)
    assert sum(r["samples"] for r in expected.values()) == 400
    assert stored_rollups(db) == expected
    fold(db)
    assert stored_rollups(db, "rollups") == expected


def test_two_annotation_transactions_over_two_devices_never_deadlock(db: Engine) -> None:
    """Annotation transactions take the fold lock before device locks (an upheld dispute
    annotates one device and withdraws another in one transaction)."""
    register(db, "a1", "b1")
    failures: list[Exception] = []

    def note(device: str, cause: str = "planned") -> Annotation:
        start = START.isoformat()
        end = (START + timedelta(minutes=30)).isoformat()
        return Annotation.model_validate(
            {"device_id": device, "from": start, "to": end, "cause": cause}
        )

    def other() -> None:
        try:
            with db.begin() as conn:
                notes.create(conn, note("b1"), "test")
        except Exception as exc:
            failures.append(exc)

    with db.connect() as first, first.begin():
        notes.create(first, note("a1"), "test")
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.5)  # the other transaction now waits for what this one holds
        try:
            notes.create(first, note("b1", "customer"), "test")
        except Exception as exc:
            failures.append(exc)
            raise
    thread.join(10)
    assert failures == []
    causes = rows(db, "SELECT device_id, cause FROM annotations ORDER BY id")
    assert [(r["device_id"], r["cause"]) for r in causes] == [
        ("a1", "planned"),
        ("b1", "customer"),
        ("b1", "planned"),
    ]
