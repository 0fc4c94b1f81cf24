"""The one write path (spec §1.2): new, duplicate, correction, late, batches, counters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from schemas.timeseries import PARTITIONED, ensure_partitions
from services.ingest import pipeline, writer
from services.ingest.decode import decode
from services.ingest.stats import Outcome
from tests.ingest.conftest import T0, message, payload, register, rows, sample

Write = Callable[..., Outcome]


def test_new_samples_are_stored_with_exact_values(db: Engine, write: Write) -> None:
    register(db, "crusher-07")
    out = write("crusher-07", payload(sample(0), sample(5, throughput=Decimal("0.1"))))
    assert out.counts() == {
        "received": 2,
        "stored": 2,
        "duplicates": 0,
        "corrections": 0,
        "dead_lettered": 0,
    }
    stored = rows(db, "SELECT * FROM samples ORDER BY ts")
    assert [r["throughput"] for r in stored] == [Decimal("12.125"), Decimal("0.1")]
    assert stored[0]["ts"] == T0
    assert stored[0]["downtime_cause"] == "unplanned"


def test_duplicate_changes_nothing(db: Engine, write: Write) -> None:
    register(db, "d1")
    write("d1", payload(sample(0)))
    before = rows(db, "SELECT * FROM samples")
    rollup = rows(db, "SELECT * FROM rollup_totals")
    out = write("d1", payload(sample(0, uptime_min=Decimal("4.50"))))
    assert (out.stored, out.duplicates, out.corrections) == (0, 1, 0)
    assert rows(db, "SELECT * FROM samples") == before
    assert rows(db, "SELECT * FROM rollup_totals") == rollup
    assert rows(db, "SELECT * FROM sample_revisions") == []


def test_correction_replaces_values_and_keeps_the_revision(db: Engine, write: Write) -> None:
    register(db, "d1")
    write("d1", payload(sample(0)))
    out = write("d1", payload(sample(0, throughput=0, downtime_cause="planned")))
    assert (out.stored, out.duplicates, out.corrections) == (0, 0, 1)
    (now,) = rows(db, "SELECT throughput, downtime_cause FROM samples")
    assert now == {"throughput": 0, "downtime_cause": "planned"}
    (rev,) = rows(db, "SELECT throughput, downtime_cause, revised_at FROM sample_revisions")
    assert rev["throughput"] == Decimal("12.125") and rev["downtime_cause"] == "unplanned"
    (r,) = rows(db, "SELECT samples, throughput, down_planned, down_unplanned FROM rollup_totals")
    assert r == {"samples": 1, "throughput": 0, "down_planned": Decimal("0.5"), "down_unplanned": 0}


def test_same_identity_twice_in_one_batch_is_stored_then_corrected(
    db: Engine, write: Write
) -> None:
    register(db, "d1")
    out = write("d1", payload(sample(0), sample(0, throughput=7), sample(0, throughput=7)))
    assert (out.stored, out.corrections, out.duplicates) == (1, 1, 1)
    assert rows(db, "SELECT throughput FROM samples") == [{"throughput": 7}]
    assert rows(db, "SELECT samples, throughput FROM rollup_totals") == [
        {"samples": 1, "throughput": 7}
    ]


def test_late_and_out_of_order_samples_are_accepted(db: Engine, write: Write) -> None:
    register(db, "d1")
    write("d1", payload(sample(60)))
    out = write("d1", payload(sample(30), sample(-60 * 24 * 400)))
    assert out.stored == 2
    assert len(rows(db, "SELECT 1 FROM samples")) == 3


def test_batch_stores_valid_items_and_dead_letters_each_invalid_one(
    db: Engine, write: Write
) -> None:
    register(db, "d1")
    raw = payload(sample(0), sample(5, uptime_min=6), sample(10), sample(15, interval_s=0))
    out = write("d1", raw)
    assert (out.received, out.stored, out.dead_lettered) == (4, 2, 2)
    dead = rows(
        db, "SELECT id, topic, device_id, payload, reason, status FROM dead_letters ORDER BY id"
    )
    assert [d["id"] for d in dead] == out.dead_letter_ids
    assert "samples[1]" in dead[0]["reason"] and "uptime_min" in dead[0]["reason"]
    assert "samples[3]" in dead[1]["reason"] and "interval_s" in dead[1]["reason"]
    assert bytes(dead[0]["payload"]) == payload(sample(5, uptime_min=6))
    assert {d["status"] for d in dead} == {"open"} and {d["device_id"] for d in dead} == {"d1"}


def test_unknown_device_payload_is_dead_lettered_whole(db: Engine, write: Write) -> None:
    raw = payload(sample(0), sample(5))
    out = write("ghost", raw)
    assert (out.received, out.stored, out.dead_lettered) == (2, 0, 2)
    (dead,) = rows(db, "SELECT payload, reason, device_id FROM dead_letters")
    assert bytes(dead["payload"]) == raw and "unknown device" in dead["reason"]


def test_persisted_counters_add_up_exactly(db: Engine, write: Write) -> None:
    register(db, "d1")
    write("d1", payload(sample(0), sample(5)))
    write("d1", payload(sample(0), sample(5, throughput=1), sample(10, quality_min=9)))
    write("d1", b"{not json")
    (total,) = rows(
        db,
        "SELECT sum(received) r, sum(stored) s, sum(duplicates) d, "
        "sum(corrections) c, sum(dead_lettered) x FROM ingest_counters",
    )
    assert total == {"r": 6, "s": 2, "d": 1, "c": 1, "x": 2}


def test_batch_of_stored_and_new_samples_is_classified_one_by_one(db: Engine, write: Write) -> None:
    """The all-new shortcut must give way as soon as one sample of the batch is stored."""
    register(db, "d1")
    write("d1", payload(sample(0), sample(5)))
    out = write(
        "d1",
        payload(sample(10, throughput=Decimal("2.50")), sample(0), sample(5, throughput=1)),
    )
    assert (out.stored, out.duplicates, out.corrections) == (1, 1, 1)
    stored = rows(db, "SELECT ts, throughput FROM samples ORDER BY ts")
    assert [str(r["throughput"]) for r in stored] == ["12.125", "1", "2.50"]
    (r,) = rows(db, "SELECT samples, throughput FROM rollup_totals")
    assert r == {"samples": 3, "throughput": Decimal("15.625")}
    assert len(rows(db, "SELECT 1 FROM sample_revisions")) == 1


def test_new_data_is_inserted_without_classification(
    db: Engine, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual case stays cheap: only a batch with stored samples is classified."""
    register(db, "d1")
    classified: list[int] = []
    real = writer._generation

    def spy(conn: Any, gen: int, *rest: Any) -> None:
        classified.append(gen)
        real(conn, gen, *rest)

    monkeypatch.setattr(writer, "_generation", spy)
    write("d1", payload(sample(0), sample(5)), payload(sample(10)))
    assert classified == []
    write("d1", payload(sample(10), sample(15)))
    assert classified == [1]
    write("d1", payload(sample(20), sample(20, throughput=1)))
    assert classified == [1, 2]  # generation 1 was new, generation 2 corrects it


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param(("d1", {**sample(1), "ts": "2099-01-01T00:00:00Z"}), id="outside-the-window"),
        pytest.param(("nobody", sample(1)), id="unknown-device"),
    ],
)
def test_prepared_rows_are_dropped_when_screening_changes_the_samples(
    db: Engine, refused: tuple[str, dict[str, Any]]
) -> None:
    """A sample screened out after the decoder formatted its row (and the batch's staging) is never stored."""
    register(db, "d1")
    device_id, item = refused
    decoded = [decode(message("d1", payload(sample(0)))), decode(message(device_id, payload(item)))]
    staging = writer.prepare(decoded)
    assert all(d.staged for d in decoded)
    assert staging.size == 2 and staging.devices == sorted({"d1", device_id})
    out = pipeline.ingest_decoded(db, decoded, staging=staging)
    assert (out.stored, out.dead_lettered) == (1, 1)
    assert decoded[1].staged is None
    assert rows(db, "SELECT ts FROM samples") == [{"ts": T0}]


def test_prepared_rows_escape_what_copy_text_would_read_as_a_delimiter() -> None:
    assert writer._copy_text("gw\tdev\\1\n") == "gw\\tdev\\\\1\\n"
    assert writer._copy_text("plain-id_1.2") == "plain-id_1.2"


def test_single_sample_messages_of_one_batch_across_month_ends(db: Engine, write: Write) -> None:
    """Each single-sample message counts on its own: its month, its repeats, its rollup."""
    register(db, "d1")
    month_end = 31 * 24 * 60  # minutes from T0 (1 October) to 1 November
    raws = [
        payload(sample(-5)),  # 30 September
        payload(sample(0)),
        payload(sample(-5, throughput=3)),  # corrects the first, same batch
        payload(sample(0)),  # a duplicate of the second
        payload(sample(month_end - 5), sample(month_end)),  # starts in a month already seen
    ]
    staged = writer.Staging.of([decode(message("d1", r)) for r in raws])
    assert sorted(staged.months) == [T0.replace(month=m) for m in (9, 10, 11)]
    out = write("d1", *raws)
    assert (out.stored, out.corrections, out.duplicates) == (4, 1, 1)
    got = rows(db, "SELECT ts, throughput FROM samples ORDER BY ts")
    assert [(r["ts"] - T0).total_seconds() / 60 for r in got] == [-5, 0, month_end - 5, month_end]
    assert [r["throughput"] for r in got] == [3, Decimal("12.125"), 12.125, 12.125]
    assert rows(db, "SELECT sum(samples) AS n FROM rollup_totals") == [{"n": 4}]


def test_a_partition_dropped_after_it_was_seen_is_created_again(
    db: Engine, write: Write, backend: str
) -> None:
    """The writer remembers the partitions it found; a dropped one costs no sample."""
    if backend != PARTITIONED:
        pytest.skip("native partitions only (TimescaleDB creates its chunks itself)")
    register(db, "d1")
    september = -24 * 60  # minutes from T0: 30 September
    assert write("d1", payload(sample(september))).stored == 1
    # every pooled connection remembers the partition (each retry may take another)
    held = [db.connect() for _ in range(db.pool.size())]  # type: ignore[attr-defined]
    for conn in held:
        ensure_partitions(conn, [T0 - timedelta(days=1)])
    for conn in held:
        conn.close()
    with db.begin() as conn:
        conn.execute(text("DROP TABLE samples_y2026m09"))
    out = write("d1", payload(sample(september + 5)))
    assert (out.stored, out.dead_lettered) == (1, 0)
    assert len(rows(db, "SELECT 1 FROM samples_y2026m09")) == 1


def test_only_the_toastless_staging_table_outlives_a_transaction(db: Engine) -> None:
    """What PostgreSQL empties at every commit is one table without TOAST (round 5 of issue 17).

    The classification tables exist only in a transaction that classifies,
    so the same connection classifies again and again, and an all-new write
    after them has nothing else to empty.
    """
    register(db, "d1")
    temp_tables = text(
        "SELECT c.relname, c.reltoastrelid FROM pg_class c "
        "WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind = 'r' ORDER BY 1"
    )
    with db.connect() as conn:
        for raws, stored in [
            ([payload(sample(0), sample(5))], 2),  # all new
            ([payload(sample(0, throughput=1), sample(10))], 1),  # classifies: a correction
            ([payload(sample(5, throughput=2))], 0),  # classifies again, same connection
            ([payload(sample(15))], 1),
        ]:
            with conn.begin():
                out = writer.write_messages(conn, [message("d1", r) for r in raws])
            assert out.stored == stored
            assert [tuple(r) for r in conn.execute(temp_tables)] == [("_viu_raw", 0)]
            conn.rollback()
    assert [r["throughput"] for r in rows(db, "SELECT throughput FROM samples ORDER BY ts")] == [
        1,
        2,
        Decimal("12.125"),
        Decimal("12.125"),
    ]


def test_redeliveries_between_new_batches_on_one_connection(db: Engine) -> None:
    """A refused all-new attempt, again and again, never leaves a bogus prepared statement.

    psycopg prepares a statement at its fifth execution; in a pipeline that an
    error cut short, a statement it meant to prepare is skipped by PostgreSQL
    while psycopg counts it as prepared (``writer.PIPELINED``).
    """
    register(db, "d1")
    with db.connect() as conn:
        for minute in range(0, 80, 10):
            for raw, expected in [
                (payload(sample(minute)), (1, 0)),  # new
                (payload(sample(minute), sample(minute + 5)), (1, 1)),  # one stored: classified
            ]:
                with conn.begin():
                    out = writer.write_messages(conn, [message("d1", raw)])
                assert (out.stored, out.duplicates) == expected
    assert len(rows(db, "SELECT 1 FROM samples")) == 16
    assert rows(db, "SELECT sum(received) AS n FROM ingest_counters") == [{"n": 24}]


def test_device_ids_reach_the_database_unchanged_whatever_they_hold(db: Engine) -> None:
    """The batch's ids travel as one JSON array (``admission.id_list``), not as text[]."""
    from services.ingest.admission import id_list

    ids = ['a"b', "c\\d", "e,f", "{g}", "h i", "j\tk\nl", "Mühle-7", "😀", "NULL", ""]
    with db.connect() as conn:
        got = (
            conn.execute(
                text("SELECT u.d FROM json_array_elements_text(CAST(:ids AS json)) AS u(d)"),
                {"ids": id_list(ids)},
            )
            .scalars()
            .all()
        )
    assert got == ids
