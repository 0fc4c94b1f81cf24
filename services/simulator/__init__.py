"""Fleet simulator: realistic telemetry for registered devices, live over MQTT or as backfill.

Three layers, so that each can be tested on its own:

- a pure, seeded **generator** (device profile → samples of a time range).
  Every local day draws from its own random streams, so a seed gives the same
  sample for the same instant whatever range was asked for: a backfill and a
  later live run agree, and a test can regenerate what was sent;
- **fault injection** (duplicates, out-of-order and late samples, malformed
  payloads, unknown devices, clock skew) that counts exactly what it sent, so
  the ingester's counters can be checked against it;
- **transports**: MQTT at QoS 1 counting the broker's PUBACKs, and backfill
  through the one ingest write path (``services.ingest.pipeline``), batched
  per transaction.
"""

from services.simulator.command import options_from, simulate, span_of
from services.simulator.faults import FaultInjector, Faults, Sent
from services.simulator.generator import (
    DeviceProfile,
    SimDevice,
    SimSample,
    fleet,
    generate,
)
from services.simulator.transport import backfill, progress_bar, publish_live

__all__ = [
    "DeviceProfile",
    "FaultInjector",
    "Faults",
    "Sent",
    "SimDevice",
    "SimSample",
    "backfill",
    "fleet",
    "generate",
    "options_from",
    "progress_bar",
    "publish_live",
    "simulate",
    "span_of",
]
