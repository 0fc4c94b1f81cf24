"""Telemetry ingest: MQTT and HTTP transports around one exactly-once write path.

- ``decode``: payload bytes → validated samples and rejects (pure);
- ``writer``: the one transaction that stores samples, revisions, rollup
  deltas, dead letters and counters;
- ``pipeline``: runs the writer with retries and records process counters;
- ``rollups``, ``deadletters``, ``annotations``, ``stats``: the rest of the domain
  (``rollups.fold`` moves the writes' deltas into the rollups);
- ``mqtt`` / ``service``: the MQTT consumer started by ``viu ingest``.
"""
