"""How every viu client reaches the MQTT broker (spec §1.1, transport security).

One parse of an MQTT URL and one TLS context for every connection viu makes:
the ingester and its MQTT v5 probe, the alert publisher, the simulator and
the readiness check. ``mqtts://host:port`` (default port 8883) always verifies
the broker's certificate (CA from ``VIU_MQTT_CA_FILE``, else the system's
store) and its host name; ``VIU_MQTT_CERT_FILE`` + ``VIU_MQTT_KEY_FILE`` add a
client certificate (mutual TLS). There is no switch to turn verification off:
a broker whose certificate cannot be verified is not the broker viu meant.
"""

from __future__ import annotations

import ssl
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from services.config import ENV_PREFIX, TLS_SCHEMES, ConfigError, Settings

PLAIN_PORT, TLS_PORT = 1883, 8883


@dataclass(frozen=True)
class Endpoint:
    """A broker address: host, port and whether the connection is TLS."""

    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    tls = parts.scheme in TLS_SCHEMES
    return Endpoint(
        parts.hostname or "127.0.0.1", parts.port or (TLS_PORT if tls else PLAIN_PORT), tls
    )


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The client TLS context of ``settings``; ConfigError names the file that cannot be used."""
    return _context(settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file)


@lru_cache(maxsize=8)
def _context(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    try:  # verification (CERT_REQUIRED, host name check) is create_default_context's default
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{ENV_PREFIX}MQTT_CA_FILE: cannot load {ca}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{ENV_PREFIX}MQTT_CERT_FILE/{ENV_PREFIX}MQTT_KEY_FILE: cannot load "
                f"{cert} with {key}: {exc}"
            ) from None
    return ctx


def tls_problem(exc: BaseException, where: Endpoint) -> str:
    """One line saying why a TLS connection to ``where`` failed, and what to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {where} was not accepted ({exc.verify_message}); "
            f"check {ENV_PREFIX}MQTT_CA_FILE and that the host in {ENV_PREFIX}MQTT_URL is "
            "a name the certificate carries"
        )
    reason = str(getattr(exc, "reason", None) or exc)
    upper = reason.upper()
    if "CERTIFICATE_REQUIRED" in upper or "HANDSHAKE_FAILURE" in upper:
        return (
            f"TLS: {where} requires a client certificate ({reason}); set "
            f"{ENV_PREFIX}MQTT_CERT_FILE and {ENV_PREFIX}MQTT_KEY_FILE"
        )
    if "UNKNOWN_CA" in upper or "BAD_CERTIFICATE" in upper or "CERTIFICATE_UNKNOWN" in upper:
        return (
            f"TLS: {where} refused viu's client certificate ({reason}); check "
            f"{ENV_PREFIX}MQTT_CERT_FILE against the broker's CA"
        )
    if "WRONG_VERSION_NUMBER" in upper or "RECORD_LAYER" in upper:
        return f"TLS: {where} does not speak TLS on this port ({reason}); try mqtt://"
    return f"TLS with {where} failed: {reason}"


def describe(exc: BaseException, where: Endpoint) -> str:
    """Why a connection to ``where`` failed, in one line (TLS problems explained)."""
    if isinstance(exc, ssl.SSLError):
        return tls_problem(exc, where)
    return f"{where}: {exc}"


def paho_client(
    settings: Settings,
    url: str,
    client_id: str,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
) -> paho.Client:
    """A paho client with viu's credentials and, for ``mqtts://``, its TLS context."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if settings.mqtt_username:
        secret = settings.mqtt_password
        client.username_pw_set(
            settings.mqtt_username, secret.get_secret_value() if secret else None
        )
    if endpoint(url).tls:
        client.tls_set_context(tls_context(settings))
    return client


def check(settings: Settings, url: str, timeout: float = 3.0) -> str | None:
    """None when an MQTT broker at ``url`` accepts viu (TLS and credentials included); else why not.

    A real MQTT CONNECT, not just a TCP connect: a port held by something else,
    a certificate that does not verify or a client certificate the broker
    refuses (TLS 1.3 says so only after the handshake) all count as "no".
    """
    where = endpoint(url)
    answer: dict[str, object] = {}
    client = paho_client(settings, url, f"viu-check-{uuid.uuid4().hex[:10]}")

    def on_connect(c: paho.Client, u: object, f: object, rc: object, p: object) -> None:
        answer.setdefault("rc", rc)

    client.on_connect = on_connect
    try:
        client.connect(where.host, where.port, keepalive=10)
    except (OSError, ValueError) as exc:
        return describe(exc, where)
    try:
        deadline = time.monotonic() + timeout
        while "rc" not in answer and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != paho.MQTT_ERR_SUCCESS:
                break
        rc = answer.get("rc")
        if rc is None:
            hint = " (a client certificate missing or refused?)" if where.tls else ""
            return f"{where} closed the connection or did not answer as an MQTT broker{hint}"
        if getattr(rc, "is_failure", False):
            return f"{where} refused the connection: {rc}"
        return None
    finally:
        client.disconnect()
