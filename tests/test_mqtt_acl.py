"""The production broker configuration, checked against the real Mosquitto.

A private ``mosquitto`` runs ``deploy/mosquitto/mosquitto.prod.conf`` (only its
listener and file locations rewritten for a temporary directory) with the
``deploy/mosquitto/acl`` file unchanged and credentials created by
``deploy/mosquitto/add-device.sh``. Forbidden publishes are followed by an
allowed "marker" message: MQTT keeps per-publisher order, so once the marker
arrives anything delivered before it has arrived too.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.embedded import AUTOSAVE_CHANGES, MAX_INFLIGHT, MOSQUITTO_CONF, free_port, wait_port
from tests.tls import OPENSSL, Pki, client_certificate, make_pki

paho = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
pytestmark = pytest.mark.skipif(
    MOSQUITTO is None or shutil.which("mosquitto_passwd") is None,
    reason="needs the mosquitto broker and mosquitto_passwd",
)

CONF_DIR = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
PROD_CONF = CONF_DIR / "mosquitto.prod.conf"
ADD_DEVICE = CONF_DIR / "add-device.sh"
INGESTER = "viu-ingest"
EDGE_NODE = "gw-1"  # a Sparkplug B edge node's credential
SHARED = "$share/viu/viu/+/telemetry"
TIMEOUT = 5.0
NOT_AUTHORIZED = 135  # MQTT v5 reason code 0x87


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


def render_test_config(
    template: str, port: int, home: Path, tls_port: int, pki: Pki, *, mutual: bool = False
) -> str:
    """The production config with listeners and paths moved into ``home``.

    Both listeners stay (plain, then TLS with the test's certificates);
    ``mutual`` uncomments the config's mutual-TLS lines.
    """
    if mutual:
        for key in ("cafile", "require_certificate", "use_identity_as_username"):
            template = template.replace(f"#{key} ", f"{key} ")
    replaced = {
        "listener 1883": f"listener {port} 127.0.0.1",
        "listener 8883": f"listener {tls_port} 127.0.0.1",
        "certfile": f"certfile {pki.server_cert}",
        "keyfile": f"keyfile {pki.server_key}",
        "cafile": f"cafile {pki.ca}",
        "password_file": f"password_file {home / 'passwd'}",
        "acl_file": f"acl_file {home / 'acl'}",
        "persistence_location": f"persistence_location {home}/",
        "log_dest": "log_dest stderr",
    }
    lines = []
    for line in template.splitlines():
        key = next((k for k in replaced if line == k or line.startswith(k + " ")), None)
        lines.append(replaced.pop(key) if key else line)
    replaced.pop("cafile", None)  # only with mutual TLS
    assert not replaced, f"the production config lacks {sorted(replaced)}"
    if os.geteuid() == 0:
        lines.append("user root")  # else mosquitto drops to 'mosquitto' and cannot read home
    return "\n".join(lines) + "\n"


def add_device(passwd: Path, device: str, password: str | None = None, *flags: str) -> str:
    env = {**os.environ, "DEVICE_PASSWORD": password or ""}
    done = subprocess.run(
        ["sh", str(ADD_DEVICE), "-f", str(passwd), *flags, device],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class Broker:
    port: int
    home: Path
    process: subprocess.Popen[bytes]
    passwords: dict[str, str]
    tls_port: int = 0

    def reload(self) -> None:
        """SIGHUP: mosquitto rereads the password and ACL files (asynchronously)."""
        self.process.send_signal(signal.SIGHUP)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if OPENSSL is None:
        pytest.skip("needs the openssl CLI")
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def production_broker(home: Path, pki: Pki, *, mutual: bool = False) -> Iterator[Broker]:
    """mosquitto.prod.conf for real: the ACL unchanged, credentials from add-device.sh."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONF_DIR / "acl", home / "acl")
    passwords = {user: uuid.uuid4().hex for user in ("dev-a", "dev-b", EDGE_NODE, INGESTER)}
    for user, password in passwords.items():
        gateway = ("--gateway", "-a", str(home / "acl")) if user == EDGE_NODE else ()
        add_device(home / "passwd", user, password, *gateway)
    port, tls_port = free_port(), free_port()
    conf = home / "mosquitto.conf"
    conf.write_text(
        render_test_config(PROD_CONF.read_text(), port, home, tls_port, pki, mutual=mutual)
    )
    assert MOSQUITTO is not None
    with (home / "mosquitto.log").open("ab") as log:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    try:
        if not (wait_port("127.0.0.1", port, timeout=10) and wait_port("127.0.0.1", tls_port)):
            raise RuntimeError((home / "mosquitto.log").read_text())
        yield Broker(port, home, proc, passwords, tls_port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Broker]:
    with production_broker(tmp_path_factory.mktemp("mosquitto-prod"), pki) as b:
        yield b


class Client:
    """A paho client (VERSION2 callbacks) whose callbacks feed queues the test reads."""

    def __init__(
        self,
        broker: Broker,
        user: str | None,
        password: str | None = None,
        *,
        v5: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        protocol = paho.MQTTv5 if v5 else paho.MQTTv311
        self.mqtt = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:10]}", protocol=protocol
        )
        if user is not None:
            self.mqtt.username_pw_set(user, password or broker.passwords.get(user))
        if tls is not None:
            self.mqtt.tls_set_context(tls)
        self.connack: queue.Queue[Any] = queue.Queue()
        self.subacks: queue.Queue[Any] = queue.Queue()
        self.pubacks: dict[int, Any] = {}
        self.acked = threading.Condition()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.mqtt.on_connect = lambda c, u, flags, rc, props: self.connack.put(rc)
        self.mqtt.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put(rcs)
        self.mqtt.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.mqtt.on_publish = self._on_publish
        if tls is None:
            self.mqtt.connect("127.0.0.1", broker.port)
        else:  # the test certificate names localhost
            self.mqtt.connect("localhost", broker.tls_port)
        self.mqtt.loop_start()
        self.reason = self.connack.get(timeout=TIMEOUT)

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self.acked:
            self.pubacks[mid] = rc
            self.acked.notify_all()

    def subscribe(self, topic: str) -> list[Any]:
        self.mqtt.subscribe(topic, qos=1)
        return list(self.subacks.get(timeout=TIMEOUT))

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.mqtt.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, TIMEOUT), "no PUBACK"
            return self.pubacks.pop(info.mid)

    def received_until(self, marker: bytes) -> list[tuple[str, bytes]]:
        """Everything received up to and including ``marker``."""
        got = []
        while True:
            topic, payload = self.messages.get(timeout=TIMEOUT)
            got.append((topic, payload))
            if payload == marker:
                return got

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


Connect = Callable[..., Client]


@pytest.fixture
def clients(broker: Broker) -> Iterator[Connect]:
    opened: list[Client] = []

    def connect(
        user: str | None,
        password: str | None = None,
        *,
        v5: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> Client:
        c = Client(broker, user, password, v5=v5, tls=tls)
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close()


@pytest.fixture
def ingester(clients: Connect) -> Client:
    """The ingester as viu runs it: a shared subscription to every device's telemetry."""
    c = clients(INGESTER)
    assert not c.reason.is_failure
    assert [rc.value for rc in c.subscribe(SHARED)] == [1]
    return c


def marker() -> bytes:
    return f"marker-{uuid.uuid4().hex}".encode()


def test_device_publishes_its_own_telemetry_to_the_ingester(
    clients: Connect, ingester: Client
) -> None:
    device = clients("dev-a")
    payload = b'{"ts": 0, "interval_s": 60, "uptime_min": 1, "quality_min": 1, "throughput": 3}'
    assert device.publish("viu/dev-a/telemetry", payload).value == 0
    assert ingester.received_until(payload) == [("viu/dev-a/telemetry", payload)]


@pytest.mark.parametrize(
    "topic",
    ["viu/dev-b/telemetry", "viu/dev-a/commands", "viu/dev-a/telemetry/extra", "other/topic"],
)
def test_device_publish_elsewhere_is_refused_and_not_delivered(
    clients: Connect, ingester: Client, topic: str
) -> None:
    device = clients("dev-a")
    spy = clients(INGESTER)
    assert [rc.value for rc in spy.subscribe("#")] == [1]  # granted; the ACL filters delivery
    assert device.publish(topic, b"forged").value == NOT_AUTHORIZED
    end = marker()
    assert device.publish("viu/dev-a/telemetry", end).value == 0
    assert ingester.received_until(end) == [("viu/dev-a/telemetry", end)]
    assert spy.received_until(end) == [("viu/dev-a/telemetry", end)]


def test_forged_publish_over_mqtt_311_is_acked_but_not_delivered(
    clients: Connect, ingester: Client
) -> None:
    device = clients("dev-a", v5=False)
    device.publish("viu/dev-b/telemetry", b"forged")  # 3.1.1 PUBACK carries no reason
    end = marker()
    device.publish("viu/dev-a/telemetry", end)
    assert ingester.received_until(end) == [("viu/dev-a/telemetry", end)]


def test_device_cannot_read_other_devices_telemetry(clients: Connect, ingester: Client) -> None:
    reader = clients("dev-b")
    reader.subscribe("viu/+/telemetry")
    end = marker()
    assert clients("dev-a").publish("viu/dev-a/telemetry", end).value == 0
    ingester.received_until(end)
    threading.Event().wait(0.3)
    assert reader.messages.empty()


def test_ingester_cannot_publish_telemetry(clients: Connect, ingester: Client) -> None:
    assert clients(INGESTER).publish("viu/dev-a/telemetry", b"forged").value == NOT_AUTHORIZED
    end = marker()
    clients("dev-a").publish("viu/dev-a/telemetry", end)
    assert ingester.received_until(end) == [("viu/dev-a/telemetry", end)]


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_anonymous_connect_is_refused(clients: Connect, v5: bool) -> None:
    c = clients(None, v5=v5)
    assert c.reason.is_failure
    assert str(c.reason) == "Not authorized"


def test_wrong_password_is_refused(clients: Connect) -> None:
    assert clients("dev-a", "not-the-password").reason.is_failure


def test_added_device_can_publish_after_reload_and_not_after_revoke(
    broker: Broker, clients: Connect, ingester: Client
) -> None:
    password = add_device(broker.home / "passwd", "dev-c")  # generated, printed once
    assert re.fullmatch(r"[A-Za-z0-9]{20,}", password)
    assert password not in (broker.home / "passwd").read_text()
    broker.reload()
    device = eventually(lambda: clients("dev-c", password), accepted=True)
    end = marker()
    assert device.publish("viu/dev-c/telemetry", end).value == 0
    assert ingester.received_until(end) == [("viu/dev-c/telemetry", end)]

    add_device(broker.home / "passwd", "dev-c", None, "-D")
    broker.reload()
    eventually(lambda: clients("dev-c", password), accepted=False)


def eventually(connect: Callable[[], Client], *, accepted: bool) -> Client:
    """Connect until the broker has applied a reload (SIGHUP is handled asynchronously)."""
    for _ in range(50):
        c = connect()
        if c.reason.is_failure != accepted:
            return c
        threading.Event().wait(0.1)
    raise AssertionError(f"connection still {'refused' if accepted else 'accepted'}")


def test_viu_ingester_consumes_through_the_production_acl(broker: Broker, clients: Connect) -> None:
    """viu's own MQTT consumer (shared subscription, manual acks) with the ingester credential."""
    consume_one_message(
        broker,
        clients,
        f"mqtt://127.0.0.1:{broker.port}",
        mqtt_username=INGESTER,
        mqtt_password=broker.passwords[INGESTER],
    )


def consume_one_message(
    broker: Broker, clients: Connect, url: str, device: Client | None = None, **settings: Any
) -> None:
    """viu's MqttConsumer at ``url`` receives dev-a's telemetry and nothing forged."""
    from services.config import load_settings
    from services.ingest.mqtt import MqttConsumer

    got: queue.Queue[Any] = queue.Queue()
    consumer = MqttConsumer(
        load_settings(
            mqtt_url=url,
            mqtt_client_id=f"viu-ingest-{uuid.uuid4().hex[:8]}",
            mqtt_session_expiry_s=0,
            **settings,
        ),
        url,
        lambda messages: [got.put(m) for m in messages],
    )
    consumer.start()
    try:
        for _ in range(100):
            if consumer.is_connected():
                break
            threading.Event().wait(0.1)
        assert consumer.is_connected()
        device = device or clients("dev-a")
        for _ in range(25):  # until the subscription is in place (its SUBACK is not awaited)
            device.publish("viu/dev-a/telemetry", b"warm-up")
            threading.Event().wait(0.1)
            if not got.empty():
                break
        else:
            raise AssertionError("viu's consumer received nothing")
        assert device.publish("viu/dev-b/telemetry", b"forged").value == NOT_AUTHORIZED
        end = marker()
        assert device.publish("viu/dev-a/telemetry", end).value == 0
        payloads = []
        while not payloads or payloads[-1] != end:
            message, token = got.get(timeout=TIMEOUT)
            assert message.topic == "viu/dev-a/telemetry"
            payloads.append(message.payload)
            consumer.ack(token)
        assert set(payloads[:-1]) == {b"warm-up"}
    finally:
        consumer.stop()


def test_sparkplug_edge_node_publishes_its_own_topics_and_reads_its_commands(
    clients: Connect,
) -> None:
    ingester = clients(INGESTER)
    assert [rc.value for rc in ingester.subscribe("$share/viu/spBv1.0/g/DDATA/+/+")] == [1]
    node = clients(EDGE_NODE)
    assert [rc.value for rc in node.subscribe("spBv1.0/g/NCMD/gw-1")] == [1]
    command = marker()  # viu's rebirth request reaches the node
    assert ingester.publish("spBv1.0/g/NCMD/gw-1", command).value == 0
    assert node.received_until(command) == [("spBv1.0/g/NCMD/gw-1", command)]
    for forged in ("spBv1.0/g/DDATA/gw-2/press-1", "spBv1.0/g/NCMD/gw-1", "viu/gw-1/x"):
        assert node.publish(forged, b"forged").value == NOT_AUTHORIZED
    end = marker()
    assert node.publish("spBv1.0/g/DDATA/gw-1/press-1", end).value == 0
    assert ingester.received_until(end) == [("spBv1.0/g/DDATA/gw-1/press-1", end)]


def test_a_device_account_cannot_speak_sparkplug_for_any_device(clients: Connect) -> None:
    """Only a gateway the operator provisioned publishes spBv1.0: a JSON device claims nothing."""
    ingester = clients(INGESTER)
    assert [rc.value for rc in ingester.subscribe("$share/viu/spBv1.0/#")] == [1]
    device = clients("dev-a")
    for forged in (
        "spBv1.0/g/DDATA/dev-a/dev-b",
        "spBv1.0/g/DBIRTH/dev-a/dev-b",
        "spBv1.0/g/DDEATH/dev-a/dev-b",
        "spBv1.0/g/NBIRTH/dev-a",
        "spBv1.0/g/NDEATH/dev-a",
    ):
        assert device.publish(forged, b"forged").value == NOT_AUTHORIZED
    end = marker()
    assert clients(EDGE_NODE).publish("spBv1.0/g/DBIRTH/gw-1/dev-b", end).value == 0
    assert ingester.received_until(end) == [("spBv1.0/g/DBIRTH/gw-1/dev-b", end)]


def test_a_gateway_is_granted_after_reload_and_its_grant_goes_with_the_revoke(
    broker: Broker, clients: Connect
) -> None:
    acl = broker.home / "acl"
    password = add_device(broker.home / "passwd", "gw-2", None, "-G", "-a", str(acl))
    add_device(broker.home / "passwd", "gw-2", password, "--gateway", "-a", str(acl))  # again
    assert acl.read_text().count("user gw-2\n") == 1
    broker.reload()
    gateway = eventually(lambda: clients("gw-2", password), accepted=True)
    ingester = clients(INGESTER)
    assert [rc.value for rc in ingester.subscribe("spBv1.0/#")] == [1]
    assert gateway.publish("spBv1.0/g/NBIRTH/gw-1", b"forged").value == NOT_AUTHORIZED
    end = marker()
    assert gateway.publish("spBv1.0/g/NBIRTH/gw-2", end).value == 0
    assert ingester.received_until(end) == [("spBv1.0/g/NBIRTH/gw-2", end)]

    add_device(broker.home / "passwd", "gw-2", None, "-D", "-a", str(acl))
    assert "gw-2" not in acl.read_text()
    assert acl.read_text().count("user gw-1\n") == 1  # the other gateway keeps its grant
    broker.reload()
    eventually(lambda: clients("gw-2", password), accepted=False)


def test_add_device_refuses_an_invalid_device_id(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as err:
        add_device(tmp_path / "passwd", "a/b", "pw")
    assert err.value.returncode == 2
    assert not (tmp_path / "passwd").exists()


def test_production_config_refuses_anonymous_and_names_credentials() -> None:
    conf = directives(PROD_CONF.read_text())
    assert conf["allow_anonymous"] == ["false"]
    assert conf["password_file"] == ["/mosquitto/config/passwd"]
    assert conf["acl_file"] == ["/mosquitto/config/acl"]
    assert conf["persistence"] == ["true"]


@pytest.mark.parametrize(
    "key",
    [
        "max_queued_messages",
        "max_queued_bytes",
        "max_inflight_messages",
        "persistent_client_expiration",
        "persistence",
        "autosave_on_changes",
        "autosave_interval",
    ],
)
def test_queue_limits_and_durability_are_the_same_in_every_broker_config(key: str) -> None:
    embedded = MOSQUITTO_CONF.format(
        user="", port=1, data="/d", autosave=AUTOSAVE_CHANGES, inflight=MAX_INFLIGHT
    )
    prod = directives(PROD_CONF.read_text())[key]
    assert prod == directives((CONF_DIR / "mosquitto.conf").read_text())[key]
    assert prod == directives(embedded)[key]


def test_broker_configs_save_queues_after_a_few_changes_not_a_minute() -> None:
    for text in (PROD_CONF.read_text(), (CONF_DIR / "mosquitto.conf").read_text()):
        conf = directives(text)
        assert conf["autosave_on_changes"] == ["true"]
        assert 1 <= int(conf["autosave_interval"][0]) <= 1000


def test_acl_limits_devices_to_their_own_telemetry_topic() -> None:
    acl = directives((CONF_DIR / "acl").read_text())
    assert acl["pattern"] == ["write viu/%u/telemetry"]
    # Sparkplug B: only gateway accounts (add-device.sh --gateway), none in the file as shipped.
    assert acl["user"] == ["viu-ingest"]
    assert "read viu/+/telemetry" in acl["topic"]


# --------------------------------------------------------------- the TLS listener (8883)


def context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def test_devices_publish_over_tls_with_their_credential_and_the_acl_still_holds(
    clients: Connect, ingester: Client, pki: Pki
) -> None:
    device = clients("dev-a", tls=context(pki.ca))
    assert not device.reason.is_failure
    assert device.publish("viu/dev-b/telemetry", b"forged").value == NOT_AUTHORIZED
    end = marker()
    assert device.publish("viu/dev-a/telemetry", end).value == 0
    assert ingester.received_until(end) == [("viu/dev-a/telemetry", end)]
    assert clients("dev-a", "not-the-password", tls=context(pki.ca)).reason.is_failure


def test_the_tls_listener_is_refused_by_clients_that_do_not_trust_it(
    broker: Broker, pki: Pki
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(broker, "dev-a", tls=context(pki.other_ca))


def test_viu_ingester_consumes_over_tls_from_the_production_config(
    broker: Broker, clients: Connect, pki: Pki
) -> None:
    consume_one_message(
        broker,
        clients,
        f"mqtts://localhost:{broker.tls_port}",
        mqtt_username=INGESTER,
        mqtt_password=broker.passwords[INGESTER],
        mqtt_ca_file=pki.ca,
    )


def test_mutual_tls_variant_takes_the_device_id_from_the_certificate(
    tmp_path: Path, pki: Pki
) -> None:
    """The config's commented mutual-TLS lines, uncommented: CN = username = the ACL's %u."""
    dev_a = issue_client_certificate(tmp_path / "certs", "dev-a", pki)
    with production_broker(tmp_path / "home", pki, mutual=True) as b:
        opened: list[Client] = []

        def connect(user: str | None, password: str | None = None, **kw: Any) -> Client:
            opened.append(Client(b, user, password, **kw))
            return opened[-1]

        try:
            device = connect(None, tls=context(pki.ca, *dev_a))  # no password: the certificate
            assert not device.reason.is_failure
            assert device.publish("viu/dev-b/telemetry", b"forged").value == NOT_AUTHORIZED
            # No client certificate: refused in the handshake, or (TLS 1.3) right after it.
            with pytest.raises((ssl.SSLError, queue.Empty)):
                Client(b, "dev-a", tls=context(pki.ca)).close()
            consume_one_message(
                b,
                connect,
                f"mqtts://localhost:{b.tls_port}",
                mqtt_ca_file=pki.ca,
                mqtt_cert_file=pki.client_cert,  # CN=viu-ingest, the ingester's ACL entry
                mqtt_key_file=pki.client_key,
                device=device,
            )
        finally:
            for c in opened:
                c.close()


def issue_client_certificate(d: Path, device: str, pki: Pki) -> tuple[Path, Path]:
    """A device's client certificate (CN = device id), as docs/security-mqtt.md issues one."""
    return client_certificate(d, device, pki)
