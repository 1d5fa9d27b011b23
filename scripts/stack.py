#!/usr/bin/env python3
"""The stack of the Procfile in the background: `up`, `ci-up`, `down`, `ps`; and `docker-build-all`.

    python scripts/stack.py up         # every Procfile service; returns once GET /health is 200
    python scripts/stack.py ci-up      # the quick-test profile: web, worker-gpu, worker-cpu, exporter
    python scripts/stack.py ps         # each service: state (running/exited/stopped), pid, port, log
    python scripts/stack.py down       # TERM each service's process group, KILL after a grace period
    python scripts/stack.py docker-build-all   # build docker/**/Dockerfile where an engine answers

Same preparation and environment as `make run` (scripts/run_stack.sh): models verified (fetched when
missing), database migrated, Redis ensured (scripts/ensure_redis.py starts a local one when REDIS_URL
is a loopback URL that does not answer), static files collected, PROMETHEUS_MULTIPROC_DIR emptied,
PATH with this Python's bin directory first. Each Procfile line runs under `bash -c` in its own
process group (so `down` also reaches Celery's pool children), its output appended to
$SWARM_VAR_DIR/log/<service>.log and its pid written to $SWARM_VAR_DIR/run/<service>.pid
(SWARM_VAR_DIR defaults to var/). Ports: SWARM_PORT (8000), FLOWER_PORT (5555), SWARM_EXPORTER_PORT
(9091). `up` waits $SWARM_UP_TIMEOUT (180) seconds at most; `down` sends TERM to each service's process
group, then KILL after $SWARM_DOWN_GRACE (20) seconds, and stops the redis-server `up` started, if any.
docker-build-all tries docker, then podman ($CONTAINER_ENGINE: that one alone), and builds each
docker/**/Dockerfile with the project root as the context, as swarm-<dir>:$SWARM_IMAGE_TAG (latest); a Dockerfile
that declares `ARG VARIANT` and `runtime-<variant>` stages (docker/Dockerfile: cpu, cuda) is built once per variant,
as swarm-app-<variant>:$SWARM_IMAGE_TAG with --build-arg VARIANT=<variant> ($SWARM_IMAGE_VARIANTS=cpu: that one).
Every command but ps ends with one `PASS <command>: ...` or `FAIL <command>: ...` line.

Exit status: 0 on PASS (and always for ps); 1 on FAIL; 2 when docker-build-all finds no engine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
FULL = "full"
CI = "ci"
CI_SERVICES = ("web", "worker-gpu", "worker-cpu", "exporter")
PORT_VARS = {"web": ("SWARM_PORT", 8000), "flower": ("FLOWER_PORT", 5555), "exporter": ("SWARM_EXPORTER_PORT", 9091)}
DEFAULT_UP_TIMEOUT = 180.0
DEFAULT_GRACE = 20.0
LOG_TAIL_LINES = 25


# --- paths, Procfile, environment ---------------------------------------------------------------------


def var_dir() -> Path:
    return Path(os.environ.get("SWARM_VAR_DIR") or ROOT / "var")


def log_dir() -> Path:
    return var_dir() / "log"


def run_dir() -> Path:
    return var_dir() / "run"


def state_file() -> Path:
    return run_dir() / "stack.json"


def procfile() -> dict[str, str]:
    """Procfile service name -> command line, in file order."""
    services: dict[str, str] = {}
    for line in PROCFILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+):\s*(.+)$", line.strip())
        if match and not line.lstrip().startswith("#"):
            services[match.group(1)] = match.group(2).strip()
    return services


def profile_services(profile: str) -> list[str]:
    names = list(procfile())
    return names if profile == FULL else [n for n in names if n in CI_SERVICES]


def python_bin_dir() -> Path:
    """The bin directory whose `python` the Procfile's commands run: this interpreter's, or .venv's when
    this interpreter is not a virtual environment's and the project has one (as run_stack.sh puts it)."""
    venv = ROOT / ".venv" / "bin"
    if sys.prefix == sys.base_prefix and (venv / "python").exists():
        return venv
    return Path(sys.executable).parent


def python() -> str:
    return str(python_bin_dir() / "python")


def web_host() -> str:
    host = os.environ.get("SWARM_HOST", "127.0.0.1")
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host.strip("[]")


def configured_ports() -> dict[str, int]:
    ports = {}
    for service, (var, default) in PORT_VARS.items():
        raw = os.environ.get(var, str(default))
        try:
            ports[service] = int(raw)
        except ValueError:
            raise SystemExit(f"{var}={raw!r} is not a port number") from None
    return ports


def metrics_dir() -> Path:
    return Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or var_dir() / "metrics")


def service_env(ports: dict[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{python_bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir())
    env.setdefault("PYTHONUNBUFFERED", "1")  # the logs are files: no block buffering
    for service, (var, _default) in PORT_VARS.items():
        env[var] = str(ports[service])
    return env


# --- processes --------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields from the state on (index 0 = state), or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22 of stat(5): start time in clock ticks since boot


def alive(pid: int | None, started: int | None = None) -> bool:
    """Whether `pid` is a live process (not a zombie) and, given `started`, the very one recorded."""
    if not pid:
        return False
    if Path("/proc/self/stat").exists():
        fields = _stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return started is None or int(fields[19]) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every live process (zombies left out); {} without /proc."""
    table = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            fields = _stat(int(entry.name)) if entry.name.isdigit() else None
            if fields and fields[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def service_processes(leader: int, started: int | None, table: dict[int, tuple[int, int]]) -> list[int]:
    """The live processes of a service started as session leader `leader`: the session's members and the
    leader's descendants (a child that began a session of its own too). A session id stays reserved while
    any member lives, so these are the service's own processes even when the leader is gone."""
    if not table:
        return [leader] if alive(leader, started) else []
    if leader in table and started is not None and start_time(leader) != started:
        return []  # the leader's pid now belongs to an unrelated process
    members = {pid for pid, (_ppid, sid) in table.items() if sid == leader}
    if leader in table:
        members.add(leader)
    frontier = list(members)
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _sid) in table.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return sorted(members)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def health(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """(HTTP status or None, body or error) of GET <url>/health."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310 - loopback URL
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (OSError, ValueError) as exc:
        return None, str(exc)


def log_tail(name: str, lines: int = LOG_TAIL_LINES) -> str:
    path = log_dir() / f"{name}.log"
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_000))
            text = fh.read().decode(errors="replace")
    except OSError:
        return f"    (no log at {path})"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


# --- state ------------------------------------------------------------------------------------------


def load_state() -> dict:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    run_dir().mkdir(parents=True, exist_ok=True)
    tmp = state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(state_file())


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One `up` or `down` at a time per var dir."""
    import fcntl

    run_dir().mkdir(parents=True, exist_ok=True)
    with (run_dir() / "stack.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def running(record: dict | None) -> bool:
    return bool(record) and alive(record.get("pid"), record.get("started"))


def state_of(record: dict | None) -> str:
    if not record:
        return "stopped"
    return "running" if running(record) else "exited"


def stack_url(state: dict) -> str:
    return f"http://{state.get('host', web_host())}:{state.get('ports', {}).get('web', configured_ports()['web'])}"


# --- up ---------------------------------------------------------------------------------------------


class Failure(Exception):
    """`up` cannot go on: `reason` ends the FAIL line, `details` (log tails) are printed before it."""

    def __init__(self, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.reason, self.details = reason, details


def step(what: str, argv: list[str], env: dict[str, str]) -> str:
    """Run a preparation step; its output, or Failure with the tail of it."""
    print(f"up: {what}", flush=True)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-LOG_TAIL_LINES:])
        raise Failure(f"{what} failed (exit {done.returncode}); its last lines are above", tail)
    return done.stdout


def ensure_redis(env: dict[str, str]) -> dict | None:
    """Make Redis answer (scripts/ensure_redis.py). The record of the redis-server it started, if it did."""
    out = step("redis", [python(), "scripts/ensure_redis.py"], env)
    print("\n".join(f"  {line}" for line in out.strip().splitlines()), flush=True)
    if "started a local redis-server" not in out:
        return None
    url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    port = urlparse(url).port or 6379
    data = ROOT / "var" / "redis"  # where ensure_redis.py keeps its redis-server's files
    try:
        pid = int((data / f"redis-{port}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return {"pid": pid, "started": start_time(pid), "port": port, "log": str(data / f"redis-{port}.log")}


def prepare(env: dict[str, str], *, fresh_metrics: bool) -> dict | None:
    """What `make run` does before honcho: models, database, Redis (and a RabbitMQ broker checked), static
    files, metrics directory."""
    step("models", [python(), "manage.py", "prefetch_models", "--no-progress"], env)
    step("migrate", [python(), "manage.py", "migrate", "--noinput", "-v0"], env)
    redis_record = ensure_redis(env)
    # RabbitMQ as the broker (CELERY_BROKER_URL=amqp://): it must answer; `up` does not start it.
    out = step("broker", [python(), "scripts/check_broker.py"], env)
    print("\n".join(f"  {line}" for line in out.strip().splitlines()), flush=True)
    step("collectstatic", [python(), "manage.py", "collectstatic", "--noinput", "-v0"], env)
    if fresh_metrics:  # every process of the stack writes its metrics here; only a stopped stack's are dropped
        shutil.rmtree(metrics_dir(), ignore_errors=True)
    metrics_dir().mkdir(parents=True, exist_ok=True)
    return redis_record


def spawn(name: str, command: str, env: dict[str, str]) -> subprocess.Popen:
    log_dir().mkdir(parents=True, exist_ok=True)
    run_dir().mkdir(parents=True, exist_ok=True)
    with (log_dir() / f"{name}.log").open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} stack.py up: {command}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (run_dir() / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def up(profile: str, timeout: float) -> int:
    command = "up" if profile == FULL else "ci-up"
    began = time.monotonic()
    with locked():
        state = load_state()
        wanted = profile_services(profile)
        services = state.get("services", {})
        live = {name for name, record in services.items() if name != "redis" and running(record)}
        if live:
            ports, host = state["ports"], state["host"]
        else:  # a stack all gone: start afresh, keeping the record of a redis-server it started that still runs
            redis_record = services.get("redis")
            ports, host, state = configured_ports(), web_host(), {}
            services = {"redis": redis_record} if running(redis_record) else {}
        url = f"http://{host}:{ports['web']}"
        missing = [name for name in wanted if name not in live]
        if not missing:
            status, _ = health(url)
            if status == 200:
                print(
                    f"PASS {command}: stack already running on {url} (profile {state.get('profile')}; "
                    f"{len(live)} services up, nothing to do)"
                )
                return 0
        procs: dict[str, subprocess.Popen] = {}
        try:
            busy = [f"{ports[n]} ({n})" for n in missing if n in ports and port_open(ports[n], host)]
            if busy:
                raise Failure(
                    f"port {', '.join(busy)} already in use by another process; set "
                    f"SWARM_PORT / FLOWER_PORT / SWARM_EXPORTER_PORT, or stop it"
                )
            env = service_env(ports)
            if missing:
                redis_record = prepare(env, fresh_metrics=not live)
                if redis_record:
                    services["redis"] = redis_record
                commands = procfile()
                for name in missing:
                    procs[name] = spawn(name, commands[name], env)
                    services[name] = {
                        "pid": procs[name].pid,
                        "started": start_time(procs[name].pid),
                        "command": commands[name],
                    }
                    print(f"up: started {name} (pid {procs[name].pid}, log {log_dir() / (name + '.log')})")
                state.update(
                    profile=FULL if FULL in (profile, state.get("profile")) else CI,
                    ports=ports,
                    host=host,
                    services=services,
                    started_at=state.get("started_at") or time.time(),
                )
                save_state(state)
            print(f"up: waiting for GET {url}/health == 200 (up to {timeout:.0f} s)", flush=True)
            watched = {n: r for n, r in services.items() if n in wanted or n == "redis"}
            wait_healthy(url, watched, procs, deadline=began + timeout, timeout=timeout)
        except Failure as exc:
            if exc.details:
                print(exc.details)
            print(f"FAIL {command}: {exc.reason}")
            return 1
        except KeyboardInterrupt:
            print(f"FAIL {command}: interrupted; started services keep running (`make ps`, `make down`)")
            return 1
    took = time.monotonic() - began
    print(
        f"PASS {command}: stack healthy on {url} in {took:.1f} s "
        f"({len(wanted)} services: {', '.join(wanted)}; logs in {log_dir()})"
    )
    return 0


def unhealthy(body: str) -> str:
    """What /health's JSON says is down, e.g. ' (down: workers: no serving worker has a model loaded)'."""
    try:
        report = json.loads(body)
        down = [f"{n}: {report['checks'][n].get('error', report['checks'][n].get('status'))}" for n in report["down"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f" {body[:200]}" if body else ""
    return f" (down: {'; '.join(down)})" if down else ""


def wait_healthy(
    url: str, services: dict, procs: dict[str, subprocess.Popen], *, deadline: float, timeout: float
) -> None:
    last = "no answer yet"
    while True:
        exited = [name for name, proc in procs.items() if proc.poll() is not None]
        exited += [n for n, r in services.items() if n not in procs and n not in exited and not running(r)]
        if exited:
            codes = {n: procs[n].returncode for n in exited if n in procs}
            details = "\n".join(
                f"  {n} exited{f' (exit {codes[n]})' if n in codes else ''}; last lines of its log:\n{log_tail(n)}"
                for n in exited
            )
            raise Failure(
                f"{', '.join(exited)} exited before GET /health was 200 (logs above); the others keep running "
                f"(`make ps`, `make down`)",
                details,
            )
        status, body = health(url)
        if status == 200:
            return
        last = f"{status}{unhealthy(body)}" if status else body
        if time.monotonic() >= deadline:
            tails = "\n".join(f"  {n}: last lines of its log:\n{log_tail(n, 12)}" for n in services)
            raise Failure(
                f"GET {url}/health is not 200 after {timeout:.0f} s (last answer: {last}); the services keep "
                f"running (`make ps`, `make down`)",
                tails,
            )
        time.sleep(0.5)


# --- down -------------------------------------------------------------------------------------------


def signal_groups(groups: dict[str, list[int]], leaders: dict[str, int], sig: int) -> None:
    """`sig` to each service's whole process group (its leader's), and to any of its processes outside it."""
    for name, members in groups.items():
        leader = leaders.get(name)
        if leader:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(leader, sig)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if not leader or os.getpgid(pid) != leader:
                    os.kill(pid, sig)


def stop(groups: dict[str, list[int]], leaders: dict[str, int], grace: float) -> list[str]:
    """TERM `groups`, KILL what still runs after `grace` seconds; the names KILLed."""
    if not groups:
        return []
    print(f"down: TERM {', '.join(groups)} (KILL after {grace:.0f} s)", flush=True)
    signal_groups(groups, leaders, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for ps in groups.values() for p in ps):
        time.sleep(0.2)
    killed = [name for name, ps in groups.items() if any(alive(p) for p in ps)]
    if killed:
        print(f"down: KILL {', '.join(killed)} (still running after {grace:.0f} s)", flush=True)
        signal_groups({n: groups[n] for n in killed}, leaders, signal.SIGKILL)
        end = time.monotonic() + 10
        while time.monotonic() < end and any(alive(p) for n in killed for p in groups[n]):
            time.sleep(0.1)
    return killed


def down(grace: float) -> int:
    began = time.monotonic()
    with locked():
        state = load_state()
        services = state.get("services", {})
        table = process_table()
        groups, leaders = {}, {}
        for name, record in services.items():
            if name == "redis":  # the daemonized redis-server the stack started: that process alone
                members = [record["pid"]] if running(record) else []
            else:
                members = service_processes(record["pid"], record.get("started"), table)
                leaders[name] = record["pid"]  # started in a session, hence a process group, of its own
            if members:
                groups[name] = members
        if not groups:
            clear_state(services)
            print("PASS down: nothing was running")
            return 0
        # The services first, then the Redis they use (the workers' warm shutdown still talks to it).
        killed = stop({n: ps for n, ps in groups.items() if n != "redis"}, leaders, grace)
        killed += stop({n: ps for n, ps in groups.items() if n == "redis"}, leaders, grace)
        left = [name for name, ps in groups.items() if any(alive(p) for p in ps)]
        if left:
            print(
                f"FAIL down: {', '.join(left)} still running after KILL (pids "
                f"{', '.join(str(p) for n in left for p in groups[n] if alive(p))})"
            )
            return 1
        clear_state(services)
    took = time.monotonic() - began
    how = f"; killed {', '.join(killed)}" if killed else ""
    names = [n for n in groups if n != "redis"] + (["redis"] if "redis" in groups else [])
    print(f"PASS down: stopped {', '.join(names)} ({len(names)} services) in {took:.1f} s{how}")
    return 0


def clear_state(services: dict) -> None:
    for name in services:
        with contextlib.suppress(OSError):
            (run_dir() / f"{name}.pid").unlink()
    with contextlib.suppress(OSError):
        state_file().unlink()


# --- ps ---------------------------------------------------------------------------------------------


def shown(path: Path) -> str:
    """`path` relative to the project root when inside it (var/log/web.log), else absolute."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def ps() -> int:
    state = load_state()
    services = state.get("services", {})
    ports = state.get("ports") or configured_ports()
    names = list(procfile()) + (["redis"] if "redis" in services else [])
    rows = [("SERVICE", "STATE", "PID", "PORT", "LOG")]
    for name in names:
        record = services.get(name)
        status = state_of(record)
        port = record.get("port") if name == "redis" and record else ports.get(name)
        if name == "redis":
            log = shown(Path(record["log"])) if record.get("log") else "-"
        else:
            log = shown(log_dir() / f"{name}.log")
        rows.append((name, status, str(record["pid"]) if record else "-", str(port or "-"), log))
    if services:
        url = stack_url(state)
        code, _ = health(url)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.get("started_at", 0)))
        print(f"stack: profile {state.get('profile')}, up since {started}, {url} (GET /health: {code or 'no answer'})")
    else:
        print("stack: not started (`make up` starts it)")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


# --- docker-build-all -------------------------------------------------------------------------------


def container_engine() -> tuple[str | None, str]:
    """(engine path, "") for the first of docker / podman (or $CONTAINER_ENGINE alone) whose `info` answers,
    else (None, why not)."""
    reasons = []
    chosen = os.environ.get("CONTAINER_ENGINE", "").strip()
    for name in [chosen] if chosen else ["docker", "podman"]:
        path = shutil.which(name)
        if not path:
            reasons.append(f"{name}: not installed (not on PATH)")
            continue
        try:
            done = subprocess.run([path, "info"], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            reasons.append(f"{name}: `{name} info` did not answer in 30 s")
            continue
        if done.returncode == 0:
            return path, ""
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reasons.append(f"{name}: {lines[-1] if lines else f'`{name} info` exited {done.returncode}'}")
    return None, "; ".join(reasons)


def dockerfiles() -> list[Path]:
    found = {*ROOT.glob("docker/**/Dockerfile"), *ROOT.glob("docker/**/*.Dockerfile")}
    return sorted(found)


def image_name(dockerfile: Path, variant: str = "") -> str:
    """docker/Dockerfile -> swarm-app (swarm-app-<variant>); docker/x/Dockerfile -> swarm-x;
    docker/x/worker.Dockerfile -> swarm-x-worker."""
    parts = list(dockerfile.relative_to(ROOT / "docker").parent.parts)
    if dockerfile.name != "Dockerfile":
        parts.append(dockerfile.name.removesuffix(".Dockerfile"))
    slug = "-".join([*(parts or ["app"]), *([variant] if variant else [])])
    return f"swarm-{re.sub(r'[^a-z0-9_.-]+', '-', slug.lower())}:{os.environ.get('SWARM_IMAGE_TAG', 'latest')}"


def image_variants(dockerfile: Path) -> list[str]:
    """The variants a Dockerfile builds: the <v> of its `FROM ... AS runtime-<v>` stages when it declares
    `ARG VARIANT` ($SWARM_IMAGE_VARIANTS, comma-separated, picks among them); [""] (one image) otherwise."""
    text = dockerfile.read_text()
    declared = re.findall(r"(?im)^FROM\s+\S+\s+AS\s+runtime-([a-z0-9_.]+)\s*$", text)
    if not declared or not re.search(r"(?m)^ARG\s+VARIANT\b", text):
        return [""]
    wanted = [v.strip() for v in os.environ.get("SWARM_IMAGE_VARIANTS", "").split(",") if v.strip()]
    return [v for v in declared if not wanted or v in wanted]


def docker_build_all() -> int:
    began = time.monotonic()
    engine, reason = container_engine()
    if not engine:
        print(f"FAIL docker-build-all: no container engine reachable ({reason})")
        return 2
    files = dockerfiles()
    if not files:
        print("FAIL docker-build-all: no Dockerfile under docker/")
        return 1
    built, failed = [], []
    builds = [(dockerfile, variant) for dockerfile in files for variant in image_variants(dockerfile)]
    if not builds:
        wanted = os.environ.get("SWARM_IMAGE_VARIANTS")
        print(f"FAIL docker-build-all: no variant left to build (SWARM_IMAGE_VARIANTS={wanted})")
        return 1
    for dockerfile, variant in builds:
        image = image_name(dockerfile, variant)
        args = ["--build-arg", f"VARIANT={variant}"] if variant else []
        argv = [engine, "build", "-f", str(dockerfile.relative_to(ROOT)), *args, "-t", image, "."]
        print(f"docker-build-all: {' '.join([Path(engine).name, *argv[1:]])}", flush=True)
        done = subprocess.run(argv, cwd=ROOT)  # the build context is the project root (see .dockerignore)
        (built if done.returncode == 0 else failed).append(
            f"{image}" + ("" if not done.returncode else f" (exit {done.returncode})")
        )
    took = time.monotonic() - began
    if failed:
        print(f"FAIL docker-build-all: {', '.join(failed)} did not build; built: {', '.join(built) or 'none'}")
        return 1
    print(f"PASS docker-build-all: built {', '.join(built)} with {Path(engine).name} in {took:.1f} s")
    return 0


# --- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, what in (("up", "every Procfile service"), ("ci-up", "web, worker-gpu, worker-cpu, exporter")):
        p = sub.add_parser(name, help=f"start {what} in the background; return once GET /health is 200")
        p.add_argument(
            "--timeout",
            type=float,
            default=float(os.environ.get("SWARM_UP_TIMEOUT", DEFAULT_UP_TIMEOUT)),
            help="seconds to wait for /health (default $SWARM_UP_TIMEOUT or 180)",
        )
    p = sub.add_parser("down", help="stop the background stack (TERM, then KILL after --grace seconds)")
    p.add_argument("--grace", type=float, default=float(os.environ.get("SWARM_DOWN_GRACE", DEFAULT_GRACE)))
    sub.add_parser("ps", help="each service's state, pid and port")
    sub.add_parser("docker-build-all", help="build every docker/**/Dockerfile (needs a reachable docker or podman)")
    args = parser.parse_args(argv)
    if args.command in ("up", "ci-up"):
        return up(FULL if args.command == "up" else CI, args.timeout)
    if args.command == "down":
        return down(args.grace)
    if args.command == "ps":
        return ps()
    return docker_build_all()


if __name__ == "__main__":
    sys.exit(main())
