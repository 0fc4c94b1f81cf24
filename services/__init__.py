"""viu services: ingest (MQTT/HTTP → PostgreSQL), settlement (KPIs → statements), api (FastAPI)."""
