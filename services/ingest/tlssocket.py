"""A TLS connection that one thread reads while another writes.

The ingester's receive thread waits in ``recv`` while the writer thread sends
acknowledgements on the same connection. An ``ssl.SSLSocket`` is one OpenSSL
``SSL`` object, which must not be read and written by two threads at once
(TLS 1.3 reads can write: key updates, session tickets). So the TLS state here
is an ``SSLObject`` over memory buffers, touched only under a lock, and the
plain socket carries the ciphertext: ``recv`` waits on the socket *without*
the lock, so an acknowledgement never waits for a message to arrive.

The socket's timeout still applies (``TimeoutError`` from ``recv``), and TLS
failures surface as ``ssl.SSLError`` (an ``OSError``) like socket errors do.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

RECORD = 1 << 14  # a TLS record carries at most 16 KiB of plaintext
VERDICT_WAIT_S = 1.0


class TlsSocket:
    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._lock = threading.Lock()
        self._early = b""  # plaintext that arrived while waiting for the handshake's verdict

    def handshake(self, timeout: float) -> None:
        """Complete the TLS handshake (certificate and host name verified) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                self._flush_locked()
            if done:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("TLS handshake timed out")
            try:
                self._receive(RECORD)
            except ConnectionResetError:
                raise ConnectionResetError(
                    "reset during the TLS handshake (does this port speak TLS? else use mqtt://)"
                ) from None
        if self._tls.version() == "TLSv1.3":
            self._await_verdict(min(deadline, time.monotonic() + VERDICT_WAIT_S))

    def _await_verdict(self, until: float) -> None:
        """Read the server's first records after a TLS 1.3 handshake, before sending anything.

        In TLS 1.3 the client's handshake ends before the server has checked
        the client's certificate; the server's verdict follows as an alert or
        as session tickets. Sending the first MQTT packet before it arrives
        turns a refusal into "connection reset by peer" (the server closes
        with our packet unread); read first, and the refusal is an
        ``ssl.SSLError`` that names its reason. Servers that send no tickets
        cost at most VERDICT_WAIT_S, once per connection.
        """
        previous = self._sock.gettimeout()
        try:
            self._sock.settimeout(max(0.01, until - time.monotonic()))
            try:
                self._receive(RECORD)
            except TimeoutError:
                return
            with self._lock:
                early = self._read_locked(RECORD)  # an alert raises here
            if early == b"":
                raise ConnectionResetError("the broker closed the connection after the handshake")
            self._early = early or b""
        finally:
            self._sock.settimeout(previous)

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes of plaintext; b"" once the peer closed the connection."""
        if self._early:
            early, self._early = self._early, b""
            return early
        while True:
            with self._lock:
                data = self._read_locked(size)
                self._flush_locked()
            if data is not None:
                return data
            if not self._receive(size):
                return b""

    def _receive(self, size: int) -> bool:
        raw = self._sock.recv(size)  # TimeoutError: the caller's poll interval
        with self._lock:
            if raw:
                self._incoming.write(raw)
            else:
                self._incoming.write_eof()
        return bool(raw)

    def _read_locked(self, size: int) -> bytes | None:
        """What is decryptable now (None: nothing yet), b"" at the peer's close_notify."""
        parts: list[bytes] = []
        have = 0
        while have < size:
            try:
                chunk = self._tls.read(size - have)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                if parts:
                    break
                return b""
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        if parts:
            return b"".join(parts)
        return b"" if self._incoming.eof else None

    def sendall(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[self._tls.write(view) :]
            self._flush_locked()

    def _flush_locked(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._sock.sendall(pending)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self._sock.setsockopt(level, option, value)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()
