"""docker-compose.yml as shipped: valid against the Compose specification's JSON schema, and
the properties the stack relies on to work and to stay safe. No Docker engine is needed; where
`docker compose` exists it renders the file too."""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema.validators import validator_for

from worker.celery_app import celery_config
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_IMAGE = "einvoice-worker:latest"
APP_SERVICES = {"migrate", "worker", "beat", "flower", "api", "metrics"}
ONE_SHOT = {"migrate"}
REQUIRED = {
    "POSTGRES_PASSWORD",
    "OWNER_DB_PASSWORD",
    "APP_DB_PASSWORD",
    "REDIS_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "GATEWAY",
}
REDIS_PASSWORD = "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
# read by Flower itself, not by our settings
FLOWER_VARIABLES = {"FLOWER_BASIC_AUTH"}
ROLE_POWERS = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")

Compose = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Compose:
    data: Compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # anchors resolved
    return data


def services(compose: Compose) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def app_services(compose: Compose) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(compose).items() if s.get("image") == APP_IMAGE}


def command_flag(command: list[str], *names: str) -> str | None:
    for i, word in enumerate(command):
        if word in names and i + 1 < len(command):
            return command[i + 1]
        for name in names:
            if word.startswith(f"{name}="):
                return word.split("=", 1)[1]
    return None


def healthcheck_words(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    assert test[0] == "CMD", test
    return list(test[1:])


def url_parts(value: str) -> tuple[str | None, str | None, str | None]:
    """(user, password, host) of a URL whose parts may be `${VARIABLE:?message}`."""
    found: list[str] = []

    def hide(match: re.Match[str]) -> str:
        found.append(match.group(0))
        return f"placeholder{len(found) - 1}"

    url = urlsplit(re.sub(r"\$\{[^}]*\}", hide, value))

    def show(part: str | None) -> str | None:
        return (
            None if part is None else re.sub(r"placeholder(\d+)", lambda m: found[int(m[1])], part)
        )

    return show(url.username), show(url.password), show(url.hostname)


def schema_errors(document: Compose) -> list[str]:
    schema = get_builtin_schema("vendor.compose-spec")
    validator = validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_the_file_follows_the_compose_specification(compose: Compose) -> None:
    assert schema_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["restart_policy"] = "always"
    broken["services"]["api"]["ports"] = "8000"
    errors = schema_errors(broken)  # the schema check does look
    assert any("'restart_policy' was unexpected" in e for e in errors), errors
    assert any(e.startswith("services/api/ports:") for e in errors), errors


def test_our_services_are_all_there_and_built_from_our_image(compose: Compose) -> None:
    assert set(app_services(compose)) == APP_SERVICES
    assert set(services(compose)) == APP_SERVICES | {"postgres", "redis", "rabbitmq"}


def test_every_service_rotates_its_logs(compose: Compose) -> None:
    for name, service in services(compose).items():
        logging = service.get("logging") or {}
        assert logging.get("driver") == "json-file", name
        options = logging.get("options") or {}
        assert re.fullmatch(r"\d+[kmg]", str(options.get("max-size", ""))), name
        assert int(options.get("max-file", 0)) >= 2, name


def test_every_service_of_ours_logs_json_with_settings_the_code_knows(compose: Compose) -> None:
    known = set(Settings.model_fields)
    for name, service in app_services(compose).items():
        env = service["environment"]
        assert env.get("LOG_FORMAT") == "json", name
        for variable in set(env) - FLOWER_VARIABLES:
            top = variable.lower().split("__", 1)[0]
            assert top in known, f"{name}: {variable} is not a setting"


def test_every_long_running_service_has_a_health_check(compose: Compose) -> None:
    for name, service in services(compose).items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name
        assert check.get("timeout") and check.get("interval"), name


def test_the_worker_health_check_pings_its_own_node_with_a_timeout(compose: Compose) -> None:
    worker = services(compose)["worker"]
    node = command_flag(worker["command"], "--name", "-n")
    assert node == "worker@%h"
    words = healthcheck_words(worker)
    assert words[:4] == ["celery", "-A", "worker.celery_app", "inspect"] and "ping" in words
    destination = command_flag(words, "--destination", "-d")
    assert destination is not None and destination.replace("$$HOSTNAME", "%h") == node
    timeout = command_flag(words, "--timeout", "-t")
    assert timeout is not None and float(timeout) < _seconds(worker["healthcheck"]["timeout"])


def test_the_beat_health_check_pings_beat_which_answers_while_it_ticks(
    compose: Compose,
) -> None:
    beat = services(compose)["beat"]
    words = healthcheck_words(beat)
    assert words[:4] == ["celery", "-A", "worker.celery_app", "inspect"] and "ping" in words
    assert command_flag(words, "--destination", "-d") == "celerybeat@$$HOSTNAME"
    assert command_flag(words, "--timeout", "-t") is not None
    redis_settings = Settings(broker_url="redis://:pw@redis:6379/0", gateway="dian")
    assert celery_config(redis_settings)["beat_enable_remote_control"] is True


def test_published_ports_are_served_on_every_interface_inside(compose: Compose) -> None:
    published = {n: s for n, s in services(compose).items() if s.get("ports")}
    assert set(published) == {"flower", "api", "metrics"}
    for name, service in published.items():
        command = service["command"]
        address = command_flag(command, "--address", "--host")
        port = command_flag(command, "--port")
        assert address == "0.0.0.0", f"{name} listens on {address} inside its container"
        for mapping in service["ports"]:
            host_ip, _host_port, container_port = str(mapping).split(":")
            assert container_port == port, f"{name}: publishes {mapping}, serves {port}"
            assert host_ip, f"{name}: say on which host address it is published"
        probe = " ".join(healthcheck_words(service))
        assert f"http://127.0.0.1:{port}/" in probe, name


def test_redis_requires_a_password_and_every_url_carries_it(compose: Compose) -> None:
    redis = services(compose)["redis"]
    assert redis["environment"]["REDIS_PASSWORD"] == REDIS_PASSWORD
    server = " ".join(redis["command"])
    assert "requirepass" in server and "$$REDIS_PASSWORD" in server
    assert "redis-server" in server and "--requirepass" not in server  # not on a command line
    assert redis["environment"]["REDISCLI_AUTH"] == REDIS_PASSWORD
    assert "PONG" in " ".join(healthcheck_words(redis))  # NOAUTH exits 0 too
    for name, service in app_services(compose).items():
        env = service["environment"]
        assert {"BROKER_URL", "REDIS_URL"} <= set(env), name
        for variable, value in env.items():
            if str(value).startswith(("redis://", "rediss://")):
                _, password, host = url_parts(value)
                assert host == "redis", (name, variable)
                assert password == REDIS_PASSWORD, f"{name}: {variable} has no password"


def test_every_process_of_ours_is_restarted_whatever_its_exit_status(compose: Compose) -> None:
    """A worker that Celery gives up on exits 1, beat exits when it loses its lock: only a
    policy that restarts on any exit (not `on-failure` with a status-0 exit) keeps them up."""
    for name, service in app_services(compose).items():
        if name not in ONE_SHOT:
            assert service["restart"] in ("unless-stopped", "always"), name


def test_the_rabbitmq_profile_runs_a_broker_with_a_password_the_workers_wait_for(
    compose: Compose,
) -> None:
    rabbit = services(compose)["rabbitmq"]
    assert rabbit["profiles"] == ["rabbitmq"]
    assert rabbit["environment"]["RABBITMQ_DEFAULT_PASS"] == "${RABBITMQ_PASSWORD:-}"
    assert "set RABBITMQ_PASSWORD" in " ".join(rabbit["command"])  # refuses an empty one
    for name in ("worker", "beat", "api", "flower"):
        wait = services(compose)[name]["depends_on"]["rabbitmq"]
        assert wait == {"condition": "service_healthy", "required": False}, name
    broker = app_services(compose)["worker"]["environment"]["BROKER_URL"]
    assert broker.startswith("${BROKER_URL:-redis://"), broker  # Redis unless told otherwise
    settings = Settings(broker_url="amqp://einvoice:pw@rabbitmq:5672//", gateway="dian")
    amqp = celery_config(settings)
    declared = {queue.name: queue for queue in amqp["task_queues"]}
    # every queue a worker consumes: the issuers' lanes and the buyers' copies
    assert set(declared) == {*settings.queues, settings.delivery_queue}
    for queue in declared.values():
        assert queue.queue_arguments["x-queue-type"] == "quorum"
        assert queue.queue_arguments["x-delivery-limit"] > 0
    assert amqp["broker_transport_options"] == {"confirm_publish": True}


def test_required_settings_have_no_defaults(compose: Compose) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for variable in REQUIRED:
        uses = re.findall(r"\$\{" + variable + r"([^}]*)\}", text)
        assert uses, variable
        assert all(u.startswith(":?") for u in uses), f"{variable} has a default: {uses}"
    for name, service in app_services(compose).items():
        assert re.fullmatch(r"\$\{GATEWAY:\?.+\}", service["environment"]["GATEWAY"]), name


def test_only_the_migration_connects_as_the_owner_and_neither_is_a_superuser(
    compose: Compose,
) -> None:
    bootstrap = services(compose)["postgres"]["environment"]["POSTGRES_USER"]  # a superuser
    users = {
        name: url_parts(service["environment"]["DATABASE_URL"])[0]
        for name, service in app_services(compose).items()
    }
    owner = users.pop("migrate")
    app_role = users["worker"]
    assert len({bootstrap, owner, app_role}) == 3 and set(users.values()) == {app_role}
    scripts = "\n".join(p.read_text() for p in sorted((ROOT / "docker" / "initdb").glob("*.sh")))
    for role in (owner, app_role):
        created = re.search(rf"CREATE ROLE {role}\b([^;]*);", scripts)
        assert created, f"docker/initdb does not create {role}"
        powers = created.group(1).upper()
        assert "LOGIN" in powers and not any(power in powers for power in ROLE_POWERS)
    assert re.search(rf"ALTER DATABASE \S+ OWNER TO {owner};", scripts)


def docker_compose() -> list[str] | None:
    """`docker compose` (the plugin) when this machine has it; it needs no engine to render."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
    return [docker, "compose"] if probe.returncode == 0 else None


def test_docker_compose_renders_the_file_and_refuses_it_without_a_gateway(
    tmp_path: Path,
) -> None:
    compose_cli = docker_compose()
    if compose_cli is None:
        pytest.skip("docker compose is not installed here; the schema check above stands in")
    env = {name: "0123456789abcdef" for name in REQUIRED} | {"FLOWER_BASIC_AUTH": "ops:pw"}
    env |= {"HOME": str(tmp_path), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    command = [*compose_cli, "--project-directory", str(tmp_path), "-f", str(COMPOSE)]
    rendered = subprocess.run(
        [*command, "config", "--quiet"], env=env, capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    without = {k: v for k, v in env.items() if k != "GATEWAY"}
    refused = subprocess.run(
        [*command, "config", "--quiet"], env=without, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "GATEWAY" in refused.stderr


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, text
    return float(match.group(1))
