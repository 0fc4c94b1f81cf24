"""Configuration from the environment (spec §6), in one place.

Every variable is read here and nowhere else; a wrong value fails fast with a
message that names the variable.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "VIU_"
TLS_SCHEMES = frozenset({"mqtts", "ssl"})


class ConfigError(Exception):
    """Raised when an environment variable has an unusable value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset → embedded PostgreSQL"
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://host:port or mqtts://host:port (TLS); unset → embedded"
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    bootstrap_token: SecretStr | None = None
    bootstrap_token_file: Path | None = None
    data_dir: Path = Path(".viu")
    log_level: str = "INFO"
    log_format: str = Field(default="text", pattern="^(text|json)$")
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="/metrics for processes without the API"
    )

    mqtt_topic_prefix: str = Field(default="viu", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    mqtt_client_id: str = Field(default="viu-ingest-1", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    mqtt_session_expiry_s: int = Field(default=3600, ge=0, le=2_592_000)
    mqtt_shared_group: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,64}$",
        description="set (e.g. 'viu') to split load over several ingesters",
    )
    sparkplug_group: str = Field(
        default="+",
        pattern=r"^(\+|[A-Za-z0-9._-]{1,64})?$",
        description="Sparkplug B group id to ingest ('+': every group; empty: none)",
    )
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = Field(
        default=None, description="CA certificates (PEM) for mqtts://; unset → the system's store"
    )
    mqtt_cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    mqtt_key_file: Path | None = Field(default=None, description="its private key (PEM)")

    embedded_mqtt_port: int = Field(
        default=1883,
        ge=1,
        le=65535,
        description="VIU_MQTT_URL unset: use the broker answering on 127.0.0.1 here, else start one",
    )
    embedded_pg_port: int = Field(default=5432, ge=1, le=65535)
    embedded_pg_fallback_port: int = Field(
        default=15432, ge=1, le=65535, description="embedded PostgreSQL when its port is taken"
    )

    db_pool_size: int = Field(default=5, ge=1, le=200, description="per engine (API, ingest, …)")
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    db_pool_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="wait for a pooled connection, then 503"
    )
    db_connect_timeout_s: int = Field(default=5, ge=1, le=600)

    ingest_batch_size: int = Field(default=5000, ge=1, le=100_000)
    ingest_flush_ms: int = Field(default=10, ge=1, le=60_000)
    ingest_buffer_samples: int = Field(default=100_000, ge=100, le=5_000_000)
    ingest_switch_interval_us: int = Field(
        default=100, ge=10, le=100_000, description="the ingester's GIL switch interval"
    )
    ingest_max_ahead_s: int = Field(
        default=86_400, ge=0, le=31_622_400, description="samples later than now + this refused"
    )
    ingest_days_before_contract: int = Field(
        default=0, ge=0, le=3660, description="history accepted before the first contract period"
    )

    settlement_grace_days: int = Field(default=3, ge=0, le=60)
    settlement_close_hour: int = Field(default=2, ge=0, le=23)
    settlement_draft_hour: int = Field(default=1, ge=0, le=23)
    settlement_run_concurrency: int = Field(
        default=2, ge=1, le=64, description="POST /v1/settlements/run settling at once"
    )
    settlement_run_wait_s: float = Field(
        default=30.0, ge=0, le=3600, description="how long a further run queues before 429"
    )

    timescale_chunk_interval: str = "7 days"
    timescale_compress_after: str | None = "30 days"
    timescale_retention: str | None = None
    sample_partitions_ahead: int = Field(default=3, ge=1, le=36)

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="a person's sign-in lasts this long"
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        scheme = urlsplit(v).scheme
        if scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_only(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        parts = urlsplit(v)
        if parts.scheme not in {"mqtt", "tcp", "mqtts", "ssl"} or not parts.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _tls_files(self) -> Settings:
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError(
                f"{ENV_PREFIX}MQTT_CERT_FILE and {ENV_PREFIX}MQTT_KEY_FILE go together "
                "(a client certificate and its key)"
            )
        files = self.mqtt_ca_file or self.mqtt_cert_file
        if files is not None and self.mqtt_url and not self.mqtt_tls:
            raise ValueError(
                f"TLS files are set but {ENV_PREFIX}MQTT_URL is not mqtts://: "
                "the connection would not use them"
            )
        return self

    @property
    def mqtt_tls(self) -> bool:
        """Whether VIU_MQTT_URL asks for TLS (``mqtts://``)."""
        return bool(self.mqtt_url) and urlsplit(self.mqtt_url or "").scheme in TLS_SCHEMES

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    @cached_property
    def bootstrap_secret(self) -> str | None:
        """The bootstrap admin token, from the variable or the file it names."""
        if self.bootstrap_token is not None:
            return self.bootstrap_token.get_secret_value()
        if self.bootstrap_token_file is not None:
            try:
                return self.bootstrap_token_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigError(f"{ENV_PREFIX}BOOTSTRAP_TOKEN_FILE: cannot read: {exc}") from exc
        return None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across variables names them in its message
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from None
