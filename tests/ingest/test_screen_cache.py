"""The device screen's kept answers (``admission.ScreenCache``) are never stale.

A writer asks PostgreSQL only about devices it holds no answer for, and drops
what it holds whenever ``screen_epoch`` moved: registering a device, moving it
to another contract or adding a contract version takes effect from the next
batch on, as it did when every batch asked about every device.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, text

from services.ingest import jsonx, pipeline
from services.ingest.admission import ScreenCache, admit, screen_cache
from services.ingest.decode import Message, decode
from tests.ingest.conftest import message, payload, register, sample

Row = namedtuple("Row", "device_id effective_from starts")
OLD = datetime(2020, 3, 1, tzinfo=UTC)
OLD_TEXT = "2025-12-31T23:59:59Z"  # a second before a 2026-01 contract's first period


def kept_answers_for(db: Engine, *ids: str) -> list[str]:
    """Which of ``ids`` the engine's cache holds an answer for under its epoch."""
    with db.connect() as conn:
        _, kept, _ = screen_cache(conn).take(list(ids))
    return sorted(kept)


def write(db: Engine, device_id: str, minute: int, ts: datetime | None = None) -> tuple[int, int]:
    item = sample(minute) if ts is None else sample(0) | {"ts": jsonx.iso(ts)}
    out = pipeline.ingest(db, [message(device_id, payload(item))])
    return out.stored, out.dead_lettered


def first_version(db: Engine, contract_id: str) -> None:
    """Version 1 of ``contract_id``, from 2026-01 in UTC: its devices' window opens there."""
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contract_versions (contract_id, version, effective_from, body, "
                "created_by, created_at) "
                "VALUES (:c, 1, '2026-01', '{\"timezone\": \"UTC\"}', 't', now())"
            ),
            {"c": contract_id},
        )


def test_a_device_registered_after_it_was_refused_is_accepted_from_the_next_batch(
    db: Engine,
) -> None:
    register(db, "known-1")
    assert write(db, "known-1", 0) == (1, 0)
    assert write(db, "late-1", 0) == (0, 1)
    assert kept_answers_for(db, "known-1", "late-1") == ["known-1", "late-1"]
    register(db, "late-1", contract="C-2")
    assert write(db, "late-1", 5) == (1, 0)
    assert write(db, "known-1", 5) == (1, 0)


def test_a_new_contract_version_moves_the_window_from_the_next_batch(db: Engine) -> None:
    register(db, "w-1")  # a contract without a version: no lower bound
    assert write(db, "w-1", 0, ts=OLD) == (1, 0)
    first_version(db, "C-1")
    assert write(db, "w-1", 0, ts=OLD.replace(day=2)) == (0, 1)


def test_moving_a_device_to_another_contract_is_seen_by_the_next_batch(db: Engine) -> None:
    register(db, "m-1")
    assert write(db, "m-1", 0, ts=OLD) == (1, 0)
    register(db, contract="C-2")
    first_version(db, "C-2")
    assert write(db, "m-1", 0, ts=OLD.replace(day=2)) == (1, 0)  # still C-1: unbounded
    with db.begin() as conn:
        conn.execute(text("UPDATE devices SET contract_id = 'C-2' WHERE device_id = 'm-1'"))
    assert write(db, "m-1", 0, ts=OLD.replace(day=3)) == (0, 1)


def test_without_an_epoch_row_nothing_is_kept_and_every_batch_asks(db: Engine) -> None:
    register(db, "e-1")
    with db.begin() as conn:
        conn.execute(text("DELETE FROM screen_epoch"))
    assert write(db, "e-1", 0) == (1, 0)
    assert kept_answers_for(db, "e-1") == []
    assert write(db, "gone-1", 0) == (0, 1)
    register(db, "gone-1")  # the trigger brings the row back
    assert write(db, "gone-1", 5) == (1, 0)
    assert kept_answers_for(db, "gone-1") == ["gone-1"]


def test_emptying_the_tables_with_triggers_off_still_moves_the_epoch(db: Engine) -> None:
    """The test suite's own reset (replica role, TRUNCATE … CASCADE) must not leave stale answers."""
    register(db, "t-1")
    assert write(db, "t-1", 0) == (1, 0)
    with db.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("TRUNCATE devices, samples, rollups, rollup_deltas CASCADE"))
    assert write(db, "t-1", 5) == (0, 1)


def test_kept_answers_read_under_an_older_epoch_are_not_used() -> None:
    cache = ScreenCache()
    row = Row("a", "2026-01", OLD)
    assert cache.answer(cache.take(["a", "b"]), "e1", [row]) == {"a": row}
    taken = cache.take(["a", "b", "c"])
    assert taken[0] == "e1" and taken[1] == {"a": row, "b": None} and taken[2] == ["c"]
    assert cache.answer(taken, "e1", []) == {"a": row}
    # the epoch moved: what was kept must be asked again
    assert cache.answer(cache.take(["a", "d"]), "e2", []) is None
    assert cache.take(["a", "b", "c", "d"])[1] == {"d": None}  # only what was read after e2


@pytest.mark.parametrize("limit", [1, 3])
def test_the_cache_starts_over_beyond_its_limit(limit: int) -> None:
    cache = ScreenCache(limit=limit)
    cache.answer(cache.take(["a", "b"]), "e1", [])
    cache.answer(cache.take(["c", "d"]), "e1", [])
    assert len(cache.take(["a", "b", "c", "d"])[1]) <= max(limit, 2)


@pytest.mark.parametrize("offset_h", [0, 1, -5])
def test_a_devices_lower_bound_in_any_session_time_zone_screens_alike(offset_h: int) -> None:
    """``admit`` compares in UTC; a bound UTC cannot hold (a contract from year 1, read in a
    session east of UTC) is compared as it is, as before, instead of failing the batch."""
    zone = timezone(timedelta(hours=offset_h))
    rows = {
        "d-1": Row("d-1", "0001-01", datetime(1, 1, 1, tzinfo=zone) if offset_h > 0 else None),
        "d-2": Row("d-2", "2026-01", datetime(2026, 1, 1, tzinfo=UTC).astimezone(zone)),
    }
    batch = [
        decode(Message(f"viu/{d}/telemetry", payload(sample(0) | {"ts": ts}), OLD))
        for d, ts in (("d-1", "2020-03-01T00:00:00Z"), ("d-2", "2026-01-01T00:00:00Z"))
    ]
    batch.append(decode(Message("viu/d-2/telemetry", payload(sample(0) | {"ts": OLD_TEXT}), OLD)))
    admit(batch, rows)
    assert [len(d.samples) for d in batch] == [1, 1, 0]
    assert "before the device's first contract period 2026-01" in batch[2].rejects[0].reason
