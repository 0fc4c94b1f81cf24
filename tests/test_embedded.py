"""Embedded defaults: the in-process broker used when mosquitto is not installed."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from services.embedded import start_amqtt


def test_amqtt_fallback_broker_carries_qos1_messages() -> None:
    broker = start_amqtt()
    try:
        parts = urlsplit(broker.url)
        got = threading.Event()
        received: list[bytes] = []

        def on_message(_c, _u, msg) -> None:  # type: ignore[no-untyped-def]
            received.append(msg.payload)
            got.set()

        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="emb-sub")
        sub.on_message = on_message
        sub.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        sub.subscribe("viu/+/telemetry", qos=1)
        sub.loop_start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="emb-pub")
        pub.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        pub.loop_start()
        for _ in range(50):  # until the subscription is in place
            pub.publish("viu/dev-1/telemetry", b'{"x": 1}', qos=1).wait_for_publish(5)
            if got.wait(0.2):
                break
        assert received and received[0] == b'{"x": 1}'
        for c in (pub, sub):
            c.loop_stop()
            c.disconnect()
    finally:
        broker.stop()
