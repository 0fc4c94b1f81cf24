"""Late-data benchmark: what a batch of duplicates or corrections costs the write path.

Loads 150,000 one-minute samples (50 devices x 3,000 minutes) through the
product's pipeline, optionally compresses every TimescaleDB chunk with
``compress_chunk``, then times ``writer.write_messages`` on 5,000-sample
batches that are all new (control), all duplicates and all corrections:
best of five, each run rolled back so every run sees the same table. On
TimescaleDB with ``--compress`` this is the cost of late data landing in
compressed chunks (the insert's conflict check decompresses the batches that
hold the conflicting keys).

    .venv/bin/python bench/late_data.py --server postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/late_data.py --server postgresql://…timescaledb…/postgres --compress
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import Engine, text

from schemas.contract import ContractIn
from services import db as viu_db
from services.config import load_settings
from services.ingest import pipeline, writer
from services.ingest.decode import Message, http_topic
from services.settlement.contracts import create_contract

DEVICES = [f"late-{i:03d}" for i in range(50)]
BASE = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


def batch(k: int, throughput: int) -> list[Message]:
    """One 100-sample message per device: minutes ``k*100`` … ``k*100+99``."""
    out = []
    for device in DEVICES:
        items = ",".join(
            f'{{"ts":{BASE + (k * 100 + j) * 60},"interval_s":60,"uptime_min":1,'
            f'"quality_min":0.5,"throughput":{throughput}}}'
            for j in range(100)
        )
        raw = f'{{"samples":[{items}]}}'.encode()
        out.append(Message(http_topic(device), raw, datetime.now(UTC)))
    return out


def load(engine: Engine, compress: bool) -> None:
    with engine.begin() as conn:
        terms = {
            "contract_id": "LATE",
            "provider": "P",
            "customer": "C",
            "currency": "EUR",
            "timezone": "UTC",
            "devices": DEVICES,
            "effective_from": "2026-01",
            "unit": "u",
            "rated_capacity_per_hour": 900,
            "terms": {"fixed_fee": "1"},
        }
        create_contract(conn, ContractIn.model_validate(terms), "bench")
    for k in range(30):
        pipeline.ingest(engine, batch(k, 1))
    if compress:
        with engine.begin() as conn:
            chunks = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT compress_chunk(c, if_not_compressed => true) "
                    "FROM show_chunks('samples') c) x"
                )
            ).scalar()
        print(f"compressed chunks: {chunks}")


def timed(engine: Engine, messages: list[Message]) -> tuple[float, dict[str, int]]:
    with engine.connect() as conn:
        transaction = conn.begin()
        started = time.perf_counter()
        outcome = writer.write_messages(conn, messages)
        elapsed = time.perf_counter() - started
        transaction.rollback()
    return elapsed, outcome.counts()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--compress", action="store_true", help="compress every chunk first")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    name = f"viu_bench_late_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = args.server.rsplit("/", 1)[0] + "/" + name
    engine = viu_db.make_engine(url)
    try:
        viu_db.upgrade(engine, load_settings(database_url=url))
        load(engine, args.compress)
        cases = (("new (control)", None), ("duplicates", 1), ("corrections", 2))
        for label, throughput in cases:
            runs = [
                timed(engine, batch(31 + r, 1) if throughput is None else batch(7, throughput))
                for r in range(args.runs)
            ]
            best = min(r[0] for r in runs)
            print(
                f"{label:14s} 5,000 samples: best of {args.runs} {best * 1000:7.1f} ms {runs[0][1]}"
            )
    finally:
        engine.dispose()
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
