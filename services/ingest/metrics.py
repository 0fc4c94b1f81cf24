"""Prometheus metrics of the ingester (exposed by the API's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.ingest.stats import COUNTERS, Outcome

MESSAGES = Counter("viu_ingest_messages", "Payloads written (MQTT, HTTP, replay)")
SAMPLES = Counter("viu_ingest_samples", "Samples by outcome", ["outcome"])
DEAD_LETTERS = Counter("viu_ingest_dead_letters", "Dead-letter entries filed")
BATCH_SIZE = Histogram(
    "viu_ingest_batch_samples",
    "Samples per committed batch",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10_000, 50_000),
)
COMMIT_SECONDS = Histogram("viu_ingest_commit_seconds", "Time to write and commit one batch")
BUFFER_FILL = Gauge("viu_ingest_buffer_samples", "Samples received but not yet committed")
RETRIES = Counter("viu_ingest_retries", "Batches retried after a database error")
THREAD_RESTARTS = Counter(
    "viu_ingest_thread_restarts", "Ingest worker threads restarted after an error", ["thread"]
)
CONNECTED = Gauge("viu_ingest_broker_connected", "1 while the MQTT session is up")
FOLDS = Counter(
    "viu_ingest_rollup_folds",
    "Folds of rollup deltas into the rollups (folded, skipped: another folds, failed)",
    ["outcome"],
)


def observe(outcome: Outcome, messages: int, seconds: float) -> None:
    MESSAGES.inc(messages)
    for name in COUNTERS:
        SAMPLES.labels(outcome=name).inc(getattr(outcome, name))
    DEAD_LETTERS.inc(len(outcome.dead_letter_ids))
    BATCH_SIZE.observe(outcome.received)
    COMMIT_SECONDS.observe(seconds)
