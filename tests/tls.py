"""Certificates and Mosquitto TLS listeners for tests, made with the openssl CLI.

Everything lives in a temporary directory: a CA, a server certificate for
``localhost`` only (so ``127.0.0.1`` is a wrong host name), a client
certificate signed by the CA, and a second CA with a client certificate of
its own (what a broker must refuse).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.embedded import EmbeddedBroker, free_port, wait_port

OPENSSL = shutil.which("openssl")
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    stranger_cert: Path  # a client certificate of other_ca
    stranger_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN=viu test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    return cert, key


def _leaf(d: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (d / f"{name}.{x}" for x in ("key", "csr", "crt", "ext"))
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n" + extensions
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext,
        cwd=d,
    )  # fmt: skip
    return cert, key


def client_certificate(d: Path, name: str, pki: Pki) -> tuple[Path, Path]:
    """A client certificate with CN ``name`` signed by ``pki``'s CA: (certificate, key)."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key = pki.ca.with_suffix(".key")
    cert, key = _leaf(d, name, (pki.ca, ca_key), "extendedKeyUsage=clientAuth\n")
    key.chmod(0o644)
    return cert, key


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "ca")
    server = _leaf(
        d, "localhost", ca, "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    client = _leaf(d, "viu-ingest", ca, "extendedKeyUsage=clientAuth\n")
    other = _ca(d, "other-ca")
    stranger = _leaf(d, "stranger", other, "extendedKeyUsage=clientAuth\n")
    for key in d.glob("*.key"):
        key.chmod(0o644)  # mosquitto may run as another user
    return Pki(ca[0], *server, *client, other[0], *stranger)


TLS_LISTENER = """\
{user}listener {port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
require_certificate {mutual}
allow_anonymous true
persistence false
log_dest stderr
"""


def start_tls_broker(home: Path, pki: Pki, *, mutual: bool) -> EmbeddedBroker:
    """A Mosquitto with one TLS listener (``mutual``: client certificates required)."""
    assert MOSQUITTO is not None
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = home / "mosquitto.conf"
    conf.write_text(
        TLS_LISTENER.format(
            user="user root\n" if os.geteuid() == 0 else "",
            port=port,
            ca=pki.ca,
            cert=pki.server_cert,
            key=pki.server_key,
            mutual="true" if mutual else "false",
        )
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=(home / "mosquitto.log").open("ab"),
    )
    if not wait_port("127.0.0.1", port):
        proc.kill()
        raise RuntimeError(f"mosquitto TLS did not start: {(home / 'mosquitto.log').read_text()}")
    return EmbeddedBroker(url=f"mqtts://localhost:{port}", kind="mosquitto", process=proc)
