"""The MQTT side of ingest: a persistent QoS 1 session with manual acknowledgements.

- MQTT v5 with ``clean_start=False`` and a session expiry, so the broker keeps
  messages (and unacknowledged ones) while the ingester is away; v3.1.1 with
  ``clean_session=False`` when the broker refuses v5.
- Manual acknowledgements: a PUBACK is sent only when the writer says the
  message is committed. An ack is tied to the connection that delivered the
  message: after a reconnect the broker redelivers what was unacknowledged
  and only the new copy is acknowledged (an old packet id may name another
  message on a new connection). The generation check and the send happen
  under one lock, so a reconnect can never slip in between.
- The receive thread only splits bytes into messages; decoding happens in the
  writer thread.

Why not paho for the session itself: paho reads every packet with three
``recv`` calls after a ``select`` and builds property objects, a message
object and a topic-filter match per packet, which caps one client near 17,000
messages/s on a 2-core machine and takes half of the ingester's CPU. This
consumer speaks the few packets an ingester needs (CONNECT, SUBSCRIBE,
PUBLISH in, PUBACK out in one write per committed batch, PINGREQ, DISCONNECT)
and splits whole socket reads into messages. paho still probes whether the
broker speaks MQTT v5.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion

from services import broker
from services.config import Settings
from services.ingest import formats, metrics
from services.ingest.formats.base import Command, Message
from services.ingest.tlssocket import TlsSocket

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
READ_SIZE = 1 << 18
POLL_S = 1.0  # how often the receive thread looks at the keepalive when nothing arrives

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
    0x80: "unspecified error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
}


class AckToken(NamedTuple):
    """Which connection delivered a message, and its packet id there (one per message)."""

    generation: int
    mid: int
    qos: int


class PubAcks(NamedTuple):
    """The PUBACK packets of a batch's QoS 1 messages, all from one connection, built ahead."""

    generation: int
    data: bytes


def pubacks(tokens: Sequence[AckToken]) -> PubAcks | None:
    """``ack_many``'s packets for ``tokens``, built before the commit (None: several connections).

    The decoder thread builds them while the writer waits on PostgreSQL; the
    writer then sends one bytes object after the commit (``send_pubacks``).
    """
    if not tokens or any(t.generation != tokens[0].generation for t in tokens):
        return None
    return PubAcks(tokens[0].generation, _puback_packets(tokens))


def _puback_packets(tokens: Iterable[AckToken]) -> bytes:
    return b"".join([b"\x40\x02" + t.mid.to_bytes(2, "big") for t in tokens if t.qos == 1])


Deliver = Callable[[list[tuple[Message, AckToken]]], None]
"""Takes every message of one socket read, in order (one lock and one wake-up for all)."""


def subscriptions(settings: Settings, *, shared: bool = True) -> list[str]:
    """The topic filters of every payload format, shared when a shared group is set."""
    group = settings.mqtt_shared_group if shared else ""
    return [f"$share/{group}/{t}" if group else t for t in formats.topic_filters(settings)]


class ConnectionLost(Exception):
    """The broker closed the connection, refused it, or broke the protocol."""


class Stream(Protocol):
    """A plain socket or a ``TlsSocket``: what the session reads and writes."""

    def recv(self, size: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def settimeout(self, timeout: float | None) -> None: ...
    def shutdown(self, how: int) -> None: ...
    def close(self) -> None: ...


def varint(n: int) -> bytes:
    """MQTT's variable-length integer (remaining length, property lengths)."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


class MqttConsumer:
    def __init__(self, settings: Settings, url: str, deliver: Deliver) -> None:
        self.url = url
        self.where = broker.endpoint(url)
        self.host, self.port = self.where.host, self.where.port
        # Built now, so an unreadable certificate file stops viu at start (ConfigError).
        self._tls = broker.tls_context(settings) if self.where.tls else None
        self.settings = settings
        self.deliver = deliver
        self.topics = subscriptions(settings)
        self.v5 = True
        self._generation = 0
        self._sock: Stream | None = None
        self._last_problem = ""  # a failure is logged once, not at every retry
        self._connected = threading.Event()  # CONNACK received: acks may be sent
        self._subscribed = threading.Event()  # SUBACK received: ready for traffic
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the socket, its generation, and every write on it
        self._last_sent = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Probe for MQTT v5 (else v3.1.1), then connect and keep reconnecting in a thread."""
        if not self._supports_v5():
            # Shared subscriptions are an MQTT 5 feature: a v3 broker would take
            # "$share/..." for a literal topic and deliver nothing.
            self.topics = subscriptions(self.settings, shared=False)
            self.v5 = False
            log.info(
                "broker refused MQTT v5; using v3.1.1, a persistent session and %s",
                ", ".join(self.topics),
            )
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-{self.settings.mqtt_client_id}", daemon=True
        )
        self._thread.start()

    def _supports_v5(self, timeout: float = 5.0) -> bool:
        """Probe with a throwaway session; an unreachable broker counts as v5 (retried later)."""
        answer: dict[str, bool] = {}
        done = threading.Event()
        probe = broker.paho_client(
            self.settings,
            self.url,
            f"{self.settings.mqtt_client_id}-probe",
            MQTTProtocolVersion.MQTTv5,
        )

        def on_connect(c: paho.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            answer["v5"] = not rc.is_failure or rc.value != 0x84
            done.set()

        def on_disconnect(c: paho.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            # Closed before CONNACK: a v3-only broker, or (over TLS) a refused
            # client certificate, which the session then reports.
            answer.setdefault("v5", self.where.tls)
            done.set()

        probe.on_connect = on_connect
        probe.on_disconnect = on_disconnect
        try:
            probe.connect(self.host, self.port, keepalive=10, clean_start=True)
        except OSError:  # the session's own attempts say why, once
            return True
        probe.loop_start()
        done.wait(timeout)
        probe.disconnect()
        probe.loop_stop()
        return answer.get("v5", True)

    # ------------------------------------------------------------------ the session

    def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._stopping.is_set():
            try:
                sock, pending = self._open()
            except (OSError, ConnectionLost) as exc:
                self._problem(exc, "cannot connect to the broker: ")
                self._stopping.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = RECONNECT_MIN_S
            try:
                self._serve(sock, pending)
            except (OSError, ConnectionLost) as exc:
                if not self._stopping.is_set():
                    self._problem(exc, "disconnected from the broker: ")
            except Exception:  # never a silent death: drop the session's connection, redelivered
                log.exception("receiving from the broker failed; reconnecting")
            finally:
                self._drop(sock)
            self._stopping.wait(RECONNECT_MIN_S)

    def _problem(self, exc: BaseException, prefix: str) -> None:
        """Log a connection failure in one line, and only when it differs from the last one.

        The session keeps retrying (every 30 s at most); repeating the same
        line at every attempt would bury everything else in the log.
        """
        what = prefix + broker.describe(exc, self.where)
        if what == self._last_problem:
            log.debug("%s (still)", what)
            return
        self._last_problem = what
        log.error("%s; retrying until it works", what)

    def _open(self) -> tuple[Stream, bytes]:
        """TCP (+TLS), CONNECT, CONNACK, SUBSCRIBE; returns the stream and bytes read past CONNACK."""
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        sock: Stream = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = TlsSocket(raw, self._tls, self.host)
                sock.handshake(CONNECT_TIMEOUT_S)
            sock.sendall(self._connect_packet())
            data = self._connack(sock)
            kind, body, end = _first_packet(data)
            if kind != CONNACK or len(body) < 2:
                raise ConnectionLost(f"expected CONNACK, got packet type {kind}")
            if body[1] != 0:
                reason = CONNACK_REASONS.get(body[1], f"reason {body[1]:#x}")
                raise ConnectionLost(f"broker refused the connection: {reason}")
            session_present = bool(body[0] & 1)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(POLL_S)
        with self._lock:
            self._generation += 1
            self._sock = sock
            self._send_locked(self._subscribe_packet())
        self._connected.set()
        metrics.CONNECTED.set(1)
        self._last_problem = ""
        log.info(
            "connected to %s (session present: %s), subscribed to %s",
            self.where,
            session_present,
            ", ".join(self.topics),
        )
        return sock, data[end:]

    def _connack(self, sock: Stream) -> bytes:
        """Read until the first whole packet (the CONNACK) has arrived."""
        data = b""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        hint = "" if self._tls else "; if this port expects TLS, use mqtts://"
        while _first_packet(data)[0] is None:
            if time.monotonic() > deadline:
                raise ConnectionLost("no CONNACK")
            try:
                chunk = sock.recv(READ_SIZE)
            except ConnectionResetError as exc:
                raise ConnectionLost(f"connection reset before CONNACK ({exc}){hint}") from None
            if not chunk:
                raise ConnectionLost(f"connection closed before CONNACK{hint}")
            data += chunk
        return data

    def _connect_packet(self) -> bytes:
        s = self.settings
        flags = 0  # clean start / clean session off: a persistent session
        payload = _utf8(s.mqtt_client_id)
        if s.mqtt_username:
            flags |= 0x80
            payload += _utf8(s.mqtt_username)
            if s.mqtt_password is not None:
                flags |= 0x40
                secret = s.mqtt_password.get_secret_value().encode()
                payload += len(secret).to_bytes(2, "big") + secret
        head = _utf8("MQTT") + bytes([5 if self.v5 else 4, flags])
        head += KEEPALIVE_S.to_bytes(2, "big")
        if self.v5:  # Session Expiry Interval (0x11)
            props = b"\x11" + self.settings.mqtt_session_expiry_s.to_bytes(4, "big")
            head += varint(len(props)) + props
        return _packet(CONNECT, 0, head + payload)

    def _subscribe_packet(self) -> bytes:
        body = (1).to_bytes(2, "big")
        if self.v5:
            body += b"\x00"  # no properties
        for topic in self.topics:
            body += _utf8(topic) + b"\x01"  # QoS 1
        return _packet(SUBSCRIBE, 2, body)

    def _serve(self, sock: Stream, data: bytes) -> None:
        """Read until the connection ends: messages to ``deliver``, keepalive pings."""
        rest, need = self._consume(data)
        parts = [rest]
        have = len(rest)
        last_heard = time.monotonic()
        while not self._stopping.is_set():
            try:
                chunk = sock.recv(READ_SIZE)
            except TimeoutError:
                chunk = None
            if chunk is not None:
                if not chunk:
                    raise ConnectionLost("connection closed by the broker")
                parts.append(chunk)
                have += len(chunk)
                if have >= need:  # a large message is parsed once it is whole
                    rest, need = self._consume(b"".join(parts))
                    parts = [rest]
                    have = len(rest)
                last_heard = time.monotonic()
            elif time.monotonic() - last_heard > KEEPALIVE_S * 1.5:
                raise ConnectionLost("the broker stopped answering")
            if time.monotonic() - self._last_sent >= KEEPALIVE_S:
                self._send(_packet(PINGREQ, 0, b""))

    def _consume(self, data: bytes) -> tuple[bytes, int]:
        """Handle every whole packet in ``data``.

        Returns the incomplete rest and how many bytes that packet needs in
        all (0 while its length is not known yet).
        """
        pos = 0
        size = len(data)
        received_at = datetime.now(UTC)
        generation = self._generation
        v5 = self.v5
        messages: list[tuple[Message, AckToken]] = []
        rest: tuple[bytes, int] | None = None
        while size - pos >= 2:
            first = data[pos]
            header = read_varint(data, pos + 1)
            if header is None:
                rest = data[pos:], 0
                break
            length, i = header
            end = i + length
            if end > size:
                rest = data[pos:], end - pos
                break
            kind = first >> 4
            if kind == PUBLISH:
                qos = (first >> 1) & 3
                tlen = (data[i] << 8) | data[i + 1]
                j = i + 2 + tlen
                topic = data[i + 2 : j].decode("utf-8", "replace")
                mid = 0
                if qos:
                    mid = (data[j] << 8) | data[j + 1]
                    j += 2
                if v5:  # skip the properties
                    props = read_varint(data, j, end)
                    if props is None:
                        raise ConnectionLost("malformed PUBLISH properties")
                    j = props[0] + props[1]
                # tuple.__new__ builds the named tuples in C; their own __new__ is
                # a Python function (the pair: 0.57 µs that way, 0.28 µs this way).
                messages.append(
                    (
                        _tuple(Message, (topic, data[j:end], received_at)),
                        _tuple(AckToken, (generation, mid, qos)),
                    )
                )
            elif kind == SUBACK:
                codes = data[i + 2 : end]
                if v5:  # skip the properties (their length is below 128 here)
                    codes = codes[1 + codes[0] :] if codes else codes
                if any(c >= 0x80 for c in codes):
                    log.error("the broker refused a subscription of %s", ", ".join(self.topics))
                else:
                    self._subscribed.set()
            elif kind == DISCONNECT:
                reason = data[i] if length else 0
                raise ConnectionLost(f"the broker sent DISCONNECT (reason {reason:#x})")
            # PINGRESP and anything else an ingester does not ask for: nothing to do
            pos = end
        if messages:
            self.deliver(messages)
        return rest if rest is not None else (data[pos:], 0)

    def _drop(self, sock: Stream) -> None:
        with self._lock:
            if self._sock is sock:
                self._sock = None
        self._connected.clear()
        self._subscribed.clear()
        metrics.CONNECTED.set(0)
        with contextlib.suppress(OSError):
            sock.close()

    # ------------------------------------------------------------------ writing

    def _send(self, data: bytes) -> None:
        with self._lock:
            self._send_locked(data)

    def _send_locked(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendall(data)
            self._last_sent = time.monotonic()
        except OSError as exc:  # the receive thread notices and reconnects
            log.debug("write to the broker failed: %s", exc)
            self._sock = None
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def ack(self, token: AckToken) -> None:
        """Acknowledge a committed message, unless its connection is gone (then it returns)."""
        self.ack_many((token,))

    def ack_many(self, tokens: Iterable[AckToken]) -> None:
        """Acknowledge committed messages in one write; those of an older connection are skipped."""
        with self._lock:
            if self._sock is None or not self._connected.is_set():
                return
            current = self._generation
            acks = _puback_packets(t for t in tokens if t.generation == current)
            if acks:
                self._send_locked(acks)

    def send_pubacks(self, acks: PubAcks) -> None:
        """Send acknowledgements ``pubacks`` built, unless their connection is gone (then it returns)."""
        with self._lock:
            if self._sock is None or not self._connected.is_set():
                return
            if acks.data and acks.generation == self._generation:
                self._send_locked(acks.data)

    def publish(self, commands: Iterable[Command]) -> None:
        """Publish QoS 0 messages (a format's commands, e.g. a Sparkplug rebirth request).

        Best effort, as QoS 0 is: while disconnected they are dropped (a
        format asks again when the need persists).
        """
        props = b"\x00" if self.v5 else b""
        data = b"".join(_packet(PUBLISH, 0, _utf8(c.topic) + props + c.payload) for c in commands)
        if data:
            self._send(data)

    def is_connected(self) -> bool:
        """Connected and subscribed (the broker confirmed the subscription)."""
        return self._connected.is_set() and self._subscribed.is_set()

    def stop(self) -> None:
        """Disconnect cleanly (the session stays on the broker) and end the receive thread."""
        self._stopping.set()
        with self._lock:
            sock = self._sock
            if sock is not None:
                self._send_locked(_packet(DISCONNECT, 0, b""))
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._connected.clear()
        self._subscribed.clear()
        metrics.CONNECTED.set(0)


_tuple = tuple.__new__


def read_varint(data: bytes, i: int, end: int | None = None) -> tuple[int, int] | None:
    """The MQTT variable byte integer at ``data[i]`` and the index after it.

    None when ``data`` (or ``data[:end]``) ends before the integer does; a
    fifth byte is malformed (the largest value takes four).
    """
    stop = len(data) if end is None else end
    value = 0
    shift = 0
    while i < stop:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise ConnectionLost("malformed variable byte integer")
    return None


def _first_packet(data: bytes) -> tuple[int | None, bytes, int]:
    """(type, body, end) of the first whole packet in ``data``, or (None, b"", 0)."""
    header = read_varint(data, 1) if len(data) >= 2 else None
    if header is None:
        return None, b"", 0
    length, i = header
    if i + length > len(data):
        return None, b"", 0
    return data[0] >> 4, data[i : i + length], i + length
