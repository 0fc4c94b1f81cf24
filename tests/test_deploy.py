"""The production deployment files, checked against the code they deploy.

No container runs here: compose.yaml is checked structurally (and with
``docker compose config`` when a compose client is installed), every command
against the real CLI parser, every VIU_* variable against the Settings class,
and the image's entrypoint with a stand-in ``viu``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.cli import build_parser
from services.config import ENV_PREFIX, Settings, load_settings

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
STABLE_IDS = DEPLOY / "compose.stable-ids.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
VIU_VAR = re.compile(r"\bVIU_[A-Z0-9_]+\b")
ENV_LINE = re.compile(r"^(#?)\s*([A-Z][A-Z0-9_]*)=(.*)$")
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|PRIVATE|_KEY$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def env_example() -> tuple[dict[str, str], set[str]]:
    """(assigned variables, variables only mentioned in a commented-out assignment)."""
    assigned: dict[str, str] = {}
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = ENV_LINE.match(line.strip())
        if m is None:
            continue
        hash_, name, value = m.groups()
        if hash_:
            commented.add(name)
        else:
            assert name not in assigned, f"{name} assigned twice"
            assigned[name] = value
    return assigned, commented


def viu_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("viu")}


def test_required_services_exist(services: dict[str, Any]) -> None:
    assert {"timescaledb", "mosquitto", "migrate", "ingest", "scheduler", "api"} <= set(services)
    assert services["timescaledb"]["image"] == "timescale/timescaledb:latest-pg16"
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"


def test_viu_services_run_real_viu_commands(services: dict[str, Any]) -> None:
    parser = build_parser()
    commands = {}
    for name, service in viu_services(services).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: give the command as a list"
        args = parser.parse_args(command)  # exits (SystemExit) on an unknown command
        assert callable(args.handler)
        commands[name] = command
    assert commands == {
        "migrate": ["db", "upgrade"],
        "ingest": ["ingest"],
        "ingest-sparkplug": ["ingest"],
        "scheduler": ["settle"],
        "api": ["api"],
    }


def test_viu_services_are_built_from_the_deploy_dockerfile(services: dict[str, Any]) -> None:
    for name, service in viu_services(services).items():
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        ), name
        assert service["env_file"] == ".env", name


def test_services_start_after_the_migration(services: dict[str, Any]) -> None:
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert "healthcheck" in services["timescaledb"]
    for name in ("ingest", "ingest-sparkplug", "scheduler", "api"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_ingest_scales_with_one_client_id_per_replica(services: dict[str, Any]) -> None:
    ingest = services["ingest"]
    assert ingest["deploy"]["replicas"] >= 2
    assert "container_name" not in ingest and "hostname" not in ingest
    assert "VIU_MQTT_CLIENT_ID" not in (ingest.get("environment") or {})
    assigned, _ = env_example()
    assert "VIU_MQTT_CLIENT_ID" not in assigned
    assert assigned["VIU_MQTT_SHARED_GROUP"]


def test_mosquitto_runs_the_production_config(services: dict[str, Any]) -> None:
    mosquitto = services["mosquitto"]
    assert mosquitto["command"][-1] == "/mosquitto/config/mosquitto.prod.conf"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in mosquitto["volumes"]}
    assert (COMPOSE.parent / mounts["/mosquitto/config"] / "mosquitto.prod.conf").is_file()
    assert "/mosquitto/data" in mounts


def test_devices_reach_the_broker_over_tls_on_8883(services: dict[str, Any]) -> None:
    """Plain 1883 is published on the host's loopback only; devices get TLS on 8883."""
    ports = [str(p) for p in services["mosquitto"]["ports"]]
    assert "8883:8883" in ports
    assert [p for p in ports if p.endswith(":1883")] == ["127.0.0.1:1883:1883"]
    conf = (DEPLOY / "mosquitto" / "mosquitto.prod.conf").read_text()
    tls = conf[conf.index("\nlistener 8883") :].split("\n\n")[0]
    assert "\ncertfile /mosquitto/config/certs/server.crt" in tls
    assert "\nkeyfile /mosquitto/config/certs/server.key" in tls
    assert "\ntls_version tlsv1.2" in tls
    assert "certs/" in (DEPLOY / "mosquitto" / ".gitignore").read_text().split()


def test_every_variable_in_the_deploy_files_is_a_real_setting() -> None:
    mentioned: set[str] = set()
    for path in (COMPOSE, STABLE_IDS, ENV_EXAMPLE, ENTRYPOINT, DEPLOY / "Dockerfile"):
        mentioned |= set(VIU_VAR.findall(path.read_text()))
    for path in (COMPOSE, STABLE_IDS):
        for service in yaml.safe_load(path.read_text())["services"].values():
            mentioned |= {k for k in service.get("environment") or {} if k.startswith(ENV_PREFIX)}
    assert mentioned - SETTINGS == set()


def test_env_example_lists_every_setting() -> None:
    assigned, commented = env_example()
    listed = {n for n in assigned | dict.fromkeys(commented) if n.startswith(ENV_PREFIX)}
    assert SETTINGS - listed == set()


def test_env_example_values_are_valid_settings() -> None:
    assigned, _ = env_example()
    values = {k[len(ENV_PREFIX) :].lower(): v for k, v in assigned.items() if k in SETTINGS}
    settings = load_settings(**values)
    assert settings.database_url is not None and settings.mqtt_url is not None
    assert settings.api_host == "0.0.0.0"


def test_api_publishes_the_configured_port(services: dict[str, Any]) -> None:
    assigned, _ = env_example()
    published = [str(p).split(":") for p in services["api"]["ports"]]
    assert [p[-1] for p in published] == [assigned["VIU_API_PORT"]]


@pytest.mark.parametrize("path", [COMPOSE, STABLE_IDS], ids=lambda p: p.name)
def test_no_secret_values_in_compose(path: Path) -> None:
    text = path.read_text()
    compose = yaml.safe_load(text)
    assert not re.search(r"://[^/\s:@]+:[^@\s$]+@", text), "credentials in a URL"
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        for key, value in env.items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert str(value).startswith("${"), f"{name}: {key} must come from deploy/.env"
    for secret in compose.get("secrets", {}).values():
        assert secret["file"].startswith("./secrets/")


def test_env_example_secrets_are_placeholders() -> None:
    assigned, _ = env_example()
    for key, value in assigned.items():
        if SECRET_NAME.search(key) or key == "VIU_DATABASE_URL":
            assert "CHANGE-ME" in value, key


def test_secret_files_are_kept_out_of_version_control() -> None:
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert ".env" in ignored and "secrets/*" in ignored
    assert "passwd" in (DEPLOY / "mosquitto" / ".gitignore").read_text().split()


def test_image_runs_viu_as_a_non_root_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"pip install \.", dockerfile)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert '["viu-entrypoint"]' in dockerfile
    assert "deploy/docker-entrypoint.sh /usr/local/bin/viu-entrypoint" in dockerfile


def test_stable_ids_override_gives_each_ingester_a_fixed_client_id(
    services: dict[str, Any],
) -> None:
    override = yaml.safe_load(STABLE_IDS.read_text())["services"]
    for replaced in ("ingest", "ingest-sparkplug"):
        assert override[replaced]["deploy"]["replicas"] == 0
    ingesters = {n: s for n, s in override.items() if n not in services}
    assert len(ingesters) >= 2
    ids = []
    for service in ingesters.values():
        assert build_parser().parse_args(service["command"]).components == ["ingest"]
        assert service["build"] == services["ingest"]["build"]
        assert service["depends_on"] == services["ingest"]["depends_on"]
        client_id = service["environment"]["VIU_MQTT_CLIENT_ID"]
        assert load_settings(mqtt_client_id=client_id).mqtt_client_id == client_id
        ids.append(client_id)
    assert len(set(ids)) == len(ids)
    assert set(override) == {"ingest", "ingest-sparkplug", *ingesters}
    assert sparkplug_hosts(ingesters) == [("ingest-1", 1)]


def sparkplug_hosts(ingesters: dict[str, Any]) -> list[tuple[str, int]]:
    """(name, replicas) of each running ingester that takes Sparkplug B (.env's group)."""
    assigned, _ = env_example()
    assert assigned["VIU_SPARKPLUG_GROUP"], ".env.example should ingest Sparkplug B"
    hosts = []
    for name, service in ingesters.items():
        replicas = int((service.get("deploy") or {}).get("replicas", 1))
        group = (service.get("environment") or {}).get("VIU_SPARKPLUG_GROUP", "+")
        if replicas and group:
            hosts.append((name, replicas))
    return hosts


def test_one_ingester_is_the_sparkplug_host(services: dict[str, Any]) -> None:
    # Sequence numbers and aliases need all of a node's messages on one
    # ingester: a shared subscription over replicas would spread them.
    ingesters = {n: s for n, s in services.items() if s.get("command") == ["ingest"]}
    assert sparkplug_hosts(ingesters) == [("ingest-sparkplug", 1)]
    assert services["ingest"]["deploy"]["replicas"] >= 2


def run_entrypoint(tmp_path: Path, *args: str, client_id: str | None = None) -> str:
    fake = tmp_path / "viu"
    fake.write_text('#!/bin/sh\necho "$* client_id=${VIU_MQTT_CLIENT_ID-unset}"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    if client_id is not None:
        env["VIU_MQTT_CLIENT_ID"] = client_id
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_entrypoint_derives_a_valid_client_id_for_ingesters(tmp_path: Path) -> None:
    out = run_entrypoint(tmp_path, "ingest")
    client_id = out.split("client_id=")[1]
    assert client_id == "viu-ingest-" + re.sub(r"[^A-Za-z0-9._-]", "-", os.uname().nodename)[:53]
    assert load_settings(mqtt_client_id=client_id).mqtt_client_id == client_id


def test_entrypoint_keeps_an_explicit_client_id_and_passes_other_commands(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, "ingest", client_id="ingest-7") == "ingest client_id=ingest-7"
    assert run_entrypoint(tmp_path, "db", "upgrade") == "db upgrade client_id=unset"
    assert run_entrypoint(tmp_path, "api") == "api client_id=unset"


def compose_client() -> list[str] | None:
    """``docker compose`` (v2), else the old ``docker-compose`` (v1), else None."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_accepts_the_file_when_available(tmp_path: Path) -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no compose client here (`docker compose` or `docker-compose`)")
    deploy = tmp_path / "deploy"
    (deploy / "secrets").mkdir(parents=True)
    text = COMPOSE.read_text()
    if client[-1] != "compose":
        text = re.sub(r"^name: .*$", "", text, flags=re.M)  # v1 predates the top-level name
    (deploy / "compose.yaml").write_text(text)
    shutil.copy(STABLE_IDS, deploy / STABLE_IDS.name)
    shutil.copy(ENV_EXAMPLE, deploy / ".env")
    (deploy / "secrets" / "bootstrap_token").write_text("placeholder\n")
    shutil.copytree(DEPLOY / "mosquitto", deploy / "mosquitto")
    for files in (["compose.yaml"], ["compose.yaml", STABLE_IDS.name]):
        args = [arg for f in files for arg in ("-f", str(deploy / f))]
        done = subprocess.run(
            [*client, *args, "config", "-q"], capture_output=True, text=True, timeout=60, cwd=deploy
        )
        assert done.returncode == 0, f"{files}: {done.stderr}"
