"""deploy/: the compose stack and the Kubernetes manifests, checked offline.

Every YAML file under deploy/ parses; the compose file validates against the Compose
Specification schema (the copy vendored in the check-jsonschema package) and each
Kubernetes manifest against the Kubernetes OpenAPI-derived JSON schemas (bundled in the
kubernetes-validate package, strict: unknown fields fail). Nothing is downloaded and no
Docker engine or cluster is needed. On top of the schemas, what an operator would notice:
the API's probes and health checks on the real paths, every RUNLEDGER_* variable a real
setting with a value the settings accept, every command a real `runledger` subcommand,
3 Kafka brokers with replication 3, and the topic script creating exactly the topics the
code uses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from kubernetes_validate.utils import all_versions

from api.routes.health import router as health_router
from runledger.cli import app as cli_app
from runledger.kafka import topic_names
from runledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
TOPIC_SCRIPT = K8S / "kafka-topics.sh"
NGINX = DEPLOY / "nginx" / "nginx.conf"
DOCKERFILE = DEPLOY / "Dockerfile"

# The oldest Kubernetes the manifests are meant for (1.29, or the oldest schema bundled
# if a later release of the package drops it), and the newest the package knows.
_BUNDLED = sorted({tuple(map(int, v.split("."))) for v in all_versions()})
_OLDEST = next((v for v in _BUNDLED if v >= (1, 29)), _BUNDLED[0])
K8S_VERSIONS = tuple(dict.fromkeys(".".join(map(str, v)) for v in (_OLDEST, _BUNDLED[-1])))

# RUNLEDGER_* variables read outside Settings, each with the file that reads it.
ENV_OUTSIDE_SETTINGS = {
    "RUNLEDGER_WORKER_INDEX": "runledger/cli.py",
    "RUNLEDGER_MEMBER_SLOT": "streams/membership.py",
    "RUNLEDGER_SECRETS_FILE": "streams/executors/secret_store.py",
}
ENV_PREFIXES_OUTSIDE_SETTINGS = {"RUNLEDGER_SECRET_": "streams/executors/secret_store.py"}
# Other variables a Runledger container may set, with what reads them.
OTHER_RUNLEDGER_ENV = {
    "FORWARDED_ALLOW_IPS": "uvicorn (client address from X-Forwarded-For)",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client (runledger/metrics.py)",
}
LEADER_TOPIC = "{prefix}-worker-__assignor-__leader"  # Faust's; the worker never declares it


# ----------------------------------------------------------------------------- loading


def deploy_yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def load_docs(path: Path) -> list[Any]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def compose() -> dict[str, Any]:
    (doc,) = load_docs(COMPOSE)
    return doc


def kustomization() -> dict[str, Any]:
    (doc,) = load_docs(K8S / "kustomization.yaml")
    return doc


def k8s_manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) of every Kubernetes object under deploy/k8s/."""
    return [(p.name, doc) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"
            for doc in load_docs(p)]  # fmt: skip


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_manifests() if doc["kind"] == kind]


def pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def all_k8s_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in k8s_manifests():
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            for container in pod_containers(doc):
                yield doc["metadata"]["name"], container


def is_runledger_image(image: str) -> bool:
    return image.rsplit("/", 1)[-1].split(":")[0] == "runledger"


def runledger_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items()
            if is_runledger_image(svc.get("image", "")) or "build" in svc}  # fmt: skip


def interpolate(value: Any) -> str:
    """Compose's `${VAR:-default}` / `${VAR}` with the defaults (no host variables)."""
    text = str(value)
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)
    assert not re.search(r"(?<!\$)\$\{", text), f"variable without a default in {value!r}"
    return text.replace("$$", "$")


def config_map_data(name: str) -> dict[str, str]:
    for doc in of_kind("ConfigMap"):
        if doc["metadata"]["name"] == name:
            return doc["data"]
    raise AssertionError(f"no ConfigMap {name}")


def cli_commands() -> dict[tuple[str, ...], Any]:
    """Every runnable `runledger` command path: ("worker",), ("topics", "create"), …"""
    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)  # a group (typer vendors click)
        if subcommands is not None:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            found[path] = command

    walk(typer.main.get_command(cli_app), ())
    return found


def package_dir(name: str) -> Path:
    """A package's directory without importing it (check_jsonschema's CLI imports click
    features that some versions lack; only its data is needed here)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


# ----------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("path", deploy_yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_under_deploy_parses(path: Path) -> None:
    assert load_docs(path), f"{path} holds no document"


def test_the_compose_file_matches_the_compose_specification() -> None:
    schema_path = package_dir("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_path.read_text())
    assert schema.get("title") == "Compose Specification"
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose()), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("name", "doc"), k8s_manifests(),
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}"
                              for n, d in k8s_manifests()])  # fmt: skip
def test_every_kubernetes_manifest_matches_the_kubernetes_schemas(
    name: str, doc: dict[str, Any], version: str
) -> None:
    problem = None
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        problem = f"{exc.message} at {'.'.join(map(str, exc.absolute_path))}"
    assert problem is None, f"{name} ({doc['kind']}) against Kubernetes {version}: {problem}"


def test_the_kustomization_lists_every_manifest_and_its_files_exist() -> None:
    kust = kustomization()
    assert kust["kind"] == "Kustomization"
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == manifests
    for generator in kust.get("configMapGenerator", []):
        for file in generator["files"]:
            assert (K8S / file.split("=")[-1]).is_file(), file
    namespaces = [doc["metadata"]["name"] for doc in of_kind("Namespace")]
    assert namespaces == [kust["namespace"]]
    for name, doc in k8s_manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == kust["namespace"], name


# ----------------------------------------------------------------------------- health


def health_paths() -> set[str]:
    paths = {getattr(route, "path", None) for route in health_router.routes}
    assert {"/health", "/ready"} <= paths, "the API's health routes moved: update deploy/"
    return paths


def test_every_http_deployment_has_liveness_on_health_and_readiness_on_ready() -> None:
    health_paths()
    port = int(config_map_data("runledger-config")["RUNLEDGER_PORT"])
    http_containers = 0
    for doc in of_kind("Deployment"):
        for container in pod_containers(doc):
            runs_api = container.get("command", [])[1:] == ["api"]
            if not runs_api:
                continue
            http_containers += 1
            where = f"{doc['metadata']['name']}/{container['name']}"
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            assert port in ports.values(), f"{where}: RUNLEDGER_PORT {port} is not a containerPort"
            for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
                assert probe in container, f"{where}: no {probe}"
                get = container[probe].get("httpGet") or {}
                assert get.get("path") == path, f"{where}: {probe} on {get.get('path')}, not {path}"
                probe_port = get.get("port")
                assert ports.get(probe_port, probe_port) == port, f"{where}: {probe} port"
    assert http_containers, "no Deployment runs the API"


def test_workers_projector_and_executors_serve_metrics_and_are_probed_there() -> None:
    port = int(config_map_data("runledger-config")["RUNLEDGER_METRICS_PORT"])
    seen = set()
    for doc in of_kind("Deployment"):
        for container in pod_containers(doc):
            command = container.get("command", [])[1:]
            if command not in (["worker"], ["projector"], ["executor"]):
                continue
            seen.add(command[0])
            where = f"{doc['metadata']['name']}/{container['name']}"
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            assert ports.get("metrics") == port, f"{where}: no metrics port {port}"
            get = container.get("livenessProbe", {}).get("httpGet") or {}
            assert get.get("path") == "/metrics" and get.get("port") == "metrics", where
    assert seen == {"worker", "projector", "executor"}


def test_the_api_service_targets_the_api_port() -> None:
    (service,) = of_kind("Service")
    (api,) = [d for d in of_kind("Deployment") if d["spec"]["template"]["metadata"]["labels"]
              == service["spec"]["selector"]]  # fmt: skip
    container_ports = {p["name"] for c in pod_containers(api) for p in c.get("ports", [])}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports


def test_the_compose_api_is_health_checked_on_ready_and_balanced_with_websockets() -> None:
    health_paths()
    services = compose()["services"]
    api = services["api"]
    port = interpolate(api["environment"]["RUNLEDGER_PORT"])
    check = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/ready" in check, check
    assert int(interpolate(api["deploy"]["replicas"])) >= 2
    lb = services["lb"]
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    mounted = {v.split(":")[0]: v.split(":")[1] for v in lb["volumes"]}
    assert (COMPOSE.parent / "nginx/nginx.conf").resolve() == NGINX
    assert mounted["./nginx/nginx.conf"] == "/etc/nginx/nginx.conf"
    conf = re.sub(r"#.*", "", NGINX.read_text())
    assert re.search(rf"server\s+api:{port}\b", conf), "the upstream is not the api service"
    assert re.search(r"proxy_http_version\s+1\.1;", conf)
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", conf)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", conf)
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade\s*\{[^}]*default\s+upgrade;",
                     conf)  # fmt: skip


# ----------------------------------------------------------------------------- settings


def compose_env() -> list[tuple[str, str, str, Any]]:
    """(service, name, value, runledger image?) of every compose environment entry."""
    found = []
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        ours = name in runledger_services()
        found += [(name, key, value, ours) for key, value in env.items()]
    return found


def k8s_env() -> list[tuple[str, str, Any, bool]]:
    """(workload/container, name, value or None, runledger image?) of every container env
    entry, including the ConfigMaps it takes whole (envFrom)."""
    found = []
    for workload, container in all_k8s_containers():
        where, ours = f"{workload}/{container['name']}", is_runledger_image(container["image"])
        for source in container.get("envFrom", []):
            data = config_map_data(source["configMapRef"]["name"])
            found += [(where, key, value, ours) for key, value in data.items()]
        found += [(where, e["name"], e.get("value"), ours) for e in container.get("env", [])]
    return found


def check_env_name(where: str, name: str, ours: bool) -> None:
    fields = {f"RUNLEDGER_{field.upper()}" for field in Settings.model_fields}
    if name.startswith("RUNLEDGER_"):
        assert (name in fields or name in ENV_OUTSIDE_SETTINGS
                or name.startswith(tuple(ENV_PREFIXES_OUTSIDE_SETTINGS))), (
            f"{where}: {name} is not a field of runledger.settings.Settings")  # fmt: skip
    elif ours:
        assert name in OTHER_RUNLEDGER_ENV, f"{where}: {name} is read by nothing in Runledger"


def test_every_env_name_is_a_real_setting() -> None:
    entries = [(svc, name, ours) for svc, name, _, ours in compose_env()]
    entries += [(where, name, ours) for where, name, _, ours in k8s_env()]
    assert entries
    for where, name, ours in entries:
        check_env_name(where, name, ours)


def test_the_names_read_outside_settings_are_still_read_there() -> None:
    for name, source in {**ENV_OUTSIDE_SETTINGS, **ENV_PREFIXES_OUTSIDE_SETTINGS}.items():
        assert name in (ROOT / source).read_text(), f"{name} is no longer read in {source}"


def test_a_misspelt_setting_is_caught() -> None:
    with pytest.raises(AssertionError, match="RUNLEDGER_PARTITION "):
        check_env_name("worker", "RUNLEDGER_PARTITION", ours=True)
    with pytest.raises(AssertionError, match="RUNLEDER_PARTITIONS"):
        check_env_name("worker", "RUNLEDER_PARTITIONS", ours=True)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("RUNLEDGER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_compose_settings_parse_and_point_at_kafka_and_a_clickhouse_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for service in runledger_services().values():
        env = {k: interpolate(v) for k, v in (service.get("environment") or {}).items()
               if k.startswith("RUNLEDGER_")}  # fmt: skip
        with monkeypatch.context() as m:
            settings = settings_from(env, m)
        assert not settings.embedded_broker
        assert not settings.uses_generations
        assert settings.dsn.startswith("http://") and not settings.uses_chdb
        assert settings.partitions == 12


def test_the_k8s_settings_parse_and_point_at_kafka_and_a_clickhouse_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = config_map_data("runledger-config")
    (secret,) = [d for d in of_kind("Secret") if d["metadata"]["name"] == "runledger-secrets"]
    env = {**data, "RUNLEDGER_CLICKHOUSE_DSN": secret["stringData"]["clickhouse-dsn"]}
    settings = settings_from(env, monkeypatch)
    assert not settings.embedded_broker and not settings.uses_generations
    assert settings.dsn.startswith("http://") and not settings.uses_chdb
    assert settings.host == "0.0.0.0"
    keys = json.loads(secret["stringData"]["api-keys.json"])
    assert {spec["role"] for spec in keys.values()} <= {"viewer", "operator", "admin"}
    assert any(spec["role"] == "admin" for spec in keys.values())


# ----------------------------------------------------------------------------- commands


def test_every_command_is_a_real_runledger_subcommand() -> None:
    commands = cli_commands()
    used: set[tuple[str, ...]] = set()
    argvs = [(f"compose:{name}", svc.get("command")) for name, svc in runledger_services().items()]
    argvs += [(f"k8s:{workload}/{c['name']}", [*c.get("command", []), *c.get("args", [])])
              for workload, c in all_k8s_containers()
              if is_runledger_image(c["image"])]  # fmt: skip
    for where, argv in argvs:
        assert isinstance(argv, list) and argv, f"{where}: give the command as a list"
        assert argv[0] == "runledger", f"{where}: {argv}"
        path = tuple(a for a in argv[1:] if not a.startswith("-"))
        assert path in commands, f"{where}: `{shlex.join(argv)}` is not a runledger command"
        used.add(path)
    processes = {("worker",), ("api",), ("projector",), ("executor",), ("topics", "create")}
    assert processes <= set(commands), "the CLI lost a process command"
    assert processes <= used, f"not deployed: {processes - used}"


def test_the_image_is_built_from_python_311_slim_with_every_package() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} ", text, re.M), f"{package}/ is not in the image"
    build = compose()["x-runledger"]["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE


# ----------------------------------------------------------------------------- Kafka


def kafka_brokers() -> dict[str, dict[str, str]]:
    return {
        name: {k: str(v) for k, v in svc["environment"].items()}
        for name, svc in compose()["services"].items()
        if svc.get("image", "").startswith("apache/kafka")
        and "broker" in str((svc.get("environment") or {}).get("KAFKA_PROCESS_ROLES"))
    }


def test_compose_runs_three_kafka_brokers_in_kraft_mode_with_replication_three() -> None:
    brokers = kafka_brokers()
    assert len(brokers) == 3
    ids = {env["KAFKA_NODE_ID"] for env in brokers.values()}
    assert ids == {"1", "2", "3"}
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    for name, env in brokers.items():
        assert "controller" in env["KAFKA_PROCESS_ROLES"], name
        voters = dict(v.split("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert set(voters) == ids and all(v.split(":")[0] in brokers for v in voters.values())
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092", name
    advertised = {env["KAFKA_ADVERTISED_LISTENERS"].split("//")[1] for env in brokers.values()}
    for svc, name, value, _ in compose_env():
        if name == "RUNLEDGER_KAFKA_BOOTSTRAP":
            assert set(interpolate(value).split(",")) == advertised, svc
    topics_env = compose()["services"]["kafka-topics"]["environment"]
    assert topics_env["REPLICATION_FACTOR"] == "3" and topics_env["MIN_INSYNC_REPLICAS"] == "2"


def run_topic_script(env: dict[str, str], tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Run kafka-topics.sh against a stand-in kafka-topics tool; what each call created."""
    log = tmp_path / "calls.jsonl"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                    f"open({str(log)!r}, 'a')"
                    ".write(json.dumps(sys.argv[1:]) + '\\n')\n")  # fmt: skip
    stub.chmod(0o755)
    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run([bash, str(TOPIC_SCRIPT)], check=True, capture_output=True, timeout=30,
                   env={"PATH": os.environ["PATH"], "KAFKA_TOPICS": str(stub), **env})  # fmt: skip
    created: dict[str, dict[str, Any]] = {}
    for line in log.read_text().splitlines():
        argv = json.loads(line)
        assert "--create" in argv and "--if-not-exists" in argv
        options: dict[str, Any] = {"config": {}}
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag == "--config":
                key, _, val = value.partition("=")
                options["config"][key] = val
            elif flag.startswith("--"):
                options[flag[2:]] = value
        created[options["topic"]] = options
    return created


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("prefix", [None, "acme"])
def test_the_topic_script_creates_the_code_topics_replicated(
    prefix: str | None, tmp_path: Path
) -> None:
    service = compose()["services"]["kafka-topics"]
    env = {k: interpolate(v) for k, v in service["environment"].items()}
    if prefix:
        env["RUNLEDGER_TOPIC_PREFIX"] = prefix
    created = run_topic_script(env, tmp_path)
    settings = Settings(kafka_bootstrap="kafka-1:9092", topic_prefix=prefix or "runledger",
                        partitions=int(env["RUNLEDGER_PARTITIONS"]), generation=0)  # fmt: skip
    code_topics = topic_names(settings)
    leader = LEADER_TOPIC.format(prefix=settings.topic_prefix)
    assert set(created) == {*code_topics, leader}
    for topic, options in created.items():
        assert options["replication-factor"] == "3", topic
        assert options["config"]["min.insync.replicas"] == "2", topic
        expected = "1" if topic == leader else str(settings.partitions)
        assert options["partitions"] == expected, topic
    changelog = topic_names(settings)[-1]
    assert changelog.endswith("-executions-changelog")
    assert created[changelog]["config"]["cleanup.policy"] == "compact"
    for topic in code_topics[:-1]:
        assert created[topic]["config"]["cleanup.policy"] == "delete", topic
        assert int(created[topic]["config"]["retention.ms"]) >= 86_400_000, topic


def test_compose_and_the_k8s_job_both_use_the_topic_script() -> None:
    services = compose()["services"]
    volumes = services["kafka-topics"]["volumes"]
    source, target = volumes[0].split(":")[:2]
    assert (COMPOSE.parent / source).resolve() == TOPIC_SCRIPT
    assert target in services["kafka-topics"]["entrypoint"]
    topics_after = services["topics"]["depends_on"]["kafka-topics"]["condition"]
    assert topics_after == "service_completed_successfully"
    (job,) = of_kind("Job")
    (init,) = job["spec"]["template"]["spec"]["initContainers"]
    (volume,) = job["spec"]["template"]["spec"]["volumes"]
    generators = {g["name"]: g["files"] for g in kustomization()["configMapGenerator"]}
    assert generators[volume["configMap"]["name"]] == [TOPIC_SCRIPT.name]
    assert f"/{TOPIC_SCRIPT.name}" in " ".join(init["command"])
