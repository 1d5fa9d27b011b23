#!/usr/bin/env python3
"""The alert drill: real Prometheus, Alertmanager and Pushgateway on loopback, a chaos VRAM metric,
and the notifications that must reach the webhook.

    python scripts/alert_drill.py run            # make test-alerts-e2e
    python scripts/alert_drill.py clear-chaos    # make clear-chaos (PUSHGATEWAY_URL)
    python scripts/alert_drill.py install        # the Debian packages, when missing (root; stdlib only)

`run` starts the three daemons on free 127.0.0.1 ports with temporary data directories and a
webhook receiver (observability.alert_receiver), loads docker/prometheus/alerts.yml with every
`for:` shortened to 2s and a 1s evaluation interval, routes with docker/alertmanager/alertmanager.yml
(webhook URLs pointed at the receiver, group timings shortened), then:

1. pushes swarm_gpu_vram_* with 1 GiB free while the trainer runs -> SwarmVramLowWhileTraining
   (severity warning) must reach /alerts/warning, and no critical alert may arrive yet;
2. pushes 0.25 GiB free -> SwarmVramCritical (severity critical) must reach /alerts/critical;
3. runs `clear-chaos` (deletes the pushed group) -> both alerts must arrive as resolved.

Exit status 0 only when all of that happened; every process it started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from observability.alert_receiver import AlertReceiver, Notification  # noqa: E402

RULES = ROOT / "docker" / "prometheus" / "alerts.yml"
ALERTMANAGER_CONFIG = ROOT / "docker" / "alertmanager" / "alertmanager.yml"
PACKAGES = ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway")
BINARIES = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "pushgateway": ("prometheus-pushgateway", "pushgateway"),
    "promtool": ("promtool",),
}
CHAOS_JOB = "swarm_chaos"
CHAOS_GROUPING = {"instance": "drill"}
DEFAULT_PUSHGATEWAY = "http://127.0.0.1:9191"  # see docker/prometheus/prometheus.yml
GIB = 1024**3
TOTAL_BYTES = 24 * GIB
WARNING_FREE_BYTES = 1 * GIB  # under 1.5 GiB, over 0.5 GiB: warning only
CRITICAL_FREE_BYTES = GIB // 4  # under 0.5 GiB: critical
DRILL_FOR = "2s"
STAGE_TIMEOUT_S = 45.0
DRILL_BUDGET_S = 115.0


class DrillError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- installation ------------------------------------------------------------------------------
def find_binary(kind: str) -> str | None:
    for name in BINARIES[kind]:
        path = shutil.which(name)
        if path:
            return path
    return None


@contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep the packages' services (which listen on all interfaces) from starting during install."""
    policy = Path("/usr/sbin/policy-rc.d")
    created = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\n# alert_drill.py: no service starts during install\nexit 101\n")
        policy.chmod(0o755)
        created = True
    try:
        yield
    finally:
        if created:
            policy.unlink(missing_ok=True)


def install(packages: tuple[str, ...] = PACKAGES) -> None:
    missing = [kind for kind in ("prometheus", "alertmanager", "pushgateway", "promtool") if not find_binary(kind)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise DrillError(f"missing {', '.join(missing)}: run as root or `apt-get install -y {' '.join(packages)}`")
    if not shutil.which("apt-get"):
        raise DrillError(f"missing {', '.join(missing)} and no apt-get to install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"installing {' '.join(packages)} (missing: {', '.join(missing)})")
    with _no_service_starts():
        subprocess.run(["apt-get", "update"], check=True, env=env)
        install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"]
        subprocess.run([*install, *packages], check=True, env=env)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        # The packaged units listen on 0.0.0.0; the drill runs its own copies on loopback.
        units = ["prometheus", "prometheus-alertmanager", "prometheus-pushgateway"]
        subprocess.run(["systemctl", "disable", "--now", *units], check=False)
    still = [kind for kind in ("prometheus", "alertmanager", "pushgateway", "promtool") if not find_binary(kind)]
    if still:
        raise DrillError(f"still missing after install: {', '.join(still)}")


# --- chaos ---------------------------------------------------------------------------------------
def push_chaos(pushgateway: str, free_bytes: int, gpu: str = "0") -> None:
    """Replace the chaos group with one GPU at `free_bytes` free while the trainer runs."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    total = Gauge("swarm_gpu_vram_total_bytes", "chaos: GPU memory size", ["gpu"], registry=registry)
    used = Gauge("swarm_gpu_vram_used_bytes", "chaos: GPU memory in use", ["gpu"], registry=registry)
    trainer = Gauge("swarm_trainer_running", "chaos: trainer running", registry=registry)
    total.labels(gpu=gpu).set(TOTAL_BYTES)
    used.labels(gpu=gpu).set(TOTAL_BYTES - free_bytes)
    trainer.set(1)
    push_to_gateway(pushgateway, job=CHAOS_JOB, registry=registry, grouping_key=CHAOS_GROUPING, timeout=5)


def clear_chaos(pushgateway: str) -> None:
    """Delete the chaos group from the Pushgateway (a no-op when it is not there)."""
    from prometheus_client import delete_from_gateway

    delete_from_gateway(pushgateway, job=CHAOS_JOB, grouping_key=CHAOS_GROUPING, timeout=5)


def chaos_present(pushgateway: str) -> bool:
    data = http_json(f"{pushgateway}/api/v1/metrics")
    for group in data.get("data", []):
        labels = group.get("labels", {})
        if labels.get("job") == CHAOS_JOB and labels.get("instance") == CHAOS_GROUPING["instance"]:
            return True
    return False


# --- helpers -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    if not url.startswith("http://127.0.0.1:"):
        raise DrillError(f"refusing a non-loopback URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback http only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str) -> dict[str, Any]:
    status, body = http_get(url)
    if status != 200:
        raise DrillError(f"GET {url} -> {status}: {body[:200]!r}")
    return json.loads(body)


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, DrillError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise DrillError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class Processes:
    """Daemons started by the drill, each in its own session, logs in the work dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise DrillError(f"{name} exited with {proc.returncode}\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


# --- configuration -------------------------------------------------------------------------------
def drill_rules(source: Path = RULES) -> dict[str, Any]:
    """alerts.yml with a 1s group interval and every `for:` cut to DRILL_FOR."""
    import yaml

    rules = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = DRILL_FOR
    return rules


def _shorten_route(route: dict[str, Any]) -> None:
    route["group_wait"] = "1s"
    route["group_interval"] = "1s"
    route["repeat_interval"] = "1h"
    for child in route.get("routes", []) or []:
        _shorten_route(child)


def drill_alertmanager_config(receiver_url: str, source: Path = ALERTMANAGER_CONFIG) -> dict[str, Any]:
    """alertmanager.yml with its webhooks pointed at the drill's receiver (same paths) and short timers."""
    import yaml

    config = copy.deepcopy(yaml.safe_load(source.read_text()))
    target = urlsplit(receiver_url)
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []) or []:
            parts = urlsplit(hook["url"])
            hook["url"] = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))
            hook["send_resolved"] = True
    _shorten_route(config["route"])
    return config


def prometheus_config(rules_path: Path, alertmanager: str, pushgateway: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules_path)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [pushgateway]}]},
        ],
    }


# --- the drill -----------------------------------------------------------------------------------
def _is(note: Notification, alertname: str, status: str, path: str) -> bool:
    if note.path != path:
        return False
    return any(a.get("status") == status and a.get("labels", {}).get("alertname") == alertname for a in note.alerts())


def run_drill(
    stage_timeout_s: float = STAGE_TIMEOUT_S,
    keep: bool = False,
    rules: Path = RULES,
    alertmanager_config: Path = ALERTMANAGER_CONFIG,
) -> float:
    started = time.monotonic()
    bins = {kind: find_binary(kind) for kind in BINARIES}
    missing = [kind for kind, path in bins.items() if not path]
    if missing:
        raise DrillError(f"missing binaries: {', '.join(missing)} (python scripts/alert_drill.py install)")
    import yaml

    workdir = Path(tempfile.mkdtemp(prefix="swarm-alert-drill-"))
    procs = Processes(workdir)
    receiver = AlertReceiver("127.0.0.1", 0).start()
    ok = False
    try:
        prom_port, am_port, pg_port = free_port(), free_port(), free_port()
        prom, am, pg = (f"127.0.0.1:{p}" for p in (prom_port, am_port, pg_port))
        pushgateway = f"http://{pg}"

        rules_path = workdir / "rules.yml"
        rules_path.write_text(yaml.safe_dump(drill_rules(rules), sort_keys=False))
        am_path = workdir / "alertmanager.yml"
        am_path.write_text(
            yaml.safe_dump(drill_alertmanager_config(receiver.url, alertmanager_config), sort_keys=False)
        )
        prom_path = workdir / "prometheus.yml"
        prom_path.write_text(yaml.safe_dump(prometheus_config(rules_path, am, pg), sort_keys=False))
        subprocess.run([bins["promtool"], "check", "config", str(prom_path)], check=True, capture_output=True)

        say(f"workdir {workdir}; receiver {receiver.url}")
        procs.start("pushgateway", [bins["pushgateway"], f"--web.listen-address={pg}", "--log.level=warn"])
        procs.start(
            "alertmanager",
            [
                bins["alertmanager"],
                f"--config.file={am_path}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address={am}",
                "--cluster.listen-address=",  # no HA gossip (it would listen on 0.0.0.0:9094)
                "--log.level=warn",
            ],
        )
        procs.start(
            "prometheus",
            [
                bins["prometheus"],
                f"--config.file={prom_path}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address={prom}",
                "--log.level=warn",
            ],
        )
        for name, addr in (("pushgateway", pg), ("alertmanager", am), ("prometheus", prom)):
            wait_until(f"{name} ready", lambda addr=addr: http_get(f"http://{addr}/-/ready")[0] == 200, 30)
        wait_until(
            "prometheus to load the drill rules and find alertmanager",
            lambda: (
                bool(http_json(f"http://{prom}/api/v1/rules")["data"]["groups"])
                and bool(http_json(f"http://{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"])
            ),
            20,
        )
        say(f"prometheus {prom}, alertmanager {am}, pushgateway {pg} ready ({time.monotonic() - started:.1f}s)")

        # 1. warning level
        push_chaos(pushgateway, WARNING_FREE_BYTES)
        say("pushed chaos: 1 GiB VRAM free while training (warning level)")
        got = receiver.wait_for(
            lambda n: _is(n, "SwarmVramLowWhileTraining", "firing", "/alerts/warning"), stage_timeout_s
        )
        procs.check_alive()
        if got is None:
            raise DrillError("the Warning alert SwarmVramLowWhileTraining never reached /alerts/warning")
        say(f"warning reached the webhook ({time.monotonic() - started:.1f}s)")
        early = [n for n in receiver.notifications() if _is(n, "SwarmVramCritical", "firing", "/alerts/critical")]
        if early:
            raise DrillError("SwarmVramCritical fired at the warning level")

        # 2. critical level
        push_chaos(pushgateway, CRITICAL_FREE_BYTES)
        say("pushed chaos: 0.25 GiB VRAM free while training (critical level)")
        got = receiver.wait_for(lambda n: _is(n, "SwarmVramCritical", "firing", "/alerts/critical"), stage_timeout_s)
        procs.check_alive()
        if got is None:
            raise DrillError("the Critical alert SwarmVramCritical never reached /alerts/critical")
        say(f"critical reached the webhook ({time.monotonic() - started:.1f}s)")

        # 3. clear-chaos, the same entry point as `make clear-chaos`
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "clear-chaos", "--pushgateway", pushgateway],
            check=True,
            timeout=30,
        )
        if chaos_present(pushgateway):
            raise DrillError("clear-chaos left the chaos group on the pushgateway")
        say("chaos cleared")
        for alertname, path in (
            ("SwarmVramLowWhileTraining", "/alerts/warning"),
            ("SwarmVramCritical", "/alerts/critical"),
        ):
            got = receiver.wait_for(lambda n, a=alertname, p=path: _is(n, a, "resolved", p), stage_timeout_s)
            if got is None:
                raise DrillError(f"no resolved notification for {alertname} at {path}")
            say(f"{alertname} resolved at the webhook ({time.monotonic() - started:.1f}s)")

        others = sorted(
            {
                a.get("labels", {}).get("alertname", "?")
                for n in receiver.notifications()
                for a in n.alerts()
                if a.get("labels", {}).get("alertname") not in {"SwarmVramLowWhileTraining", "SwarmVramCritical"}
            }
        )
        if others:
            say(f"note: other alerts also notified: {', '.join(others)}")
        elapsed = time.monotonic() - started
        if elapsed > DRILL_BUDGET_S:
            raise DrillError(f"the drill took {elapsed:.0f}s, over its {DRILL_BUDGET_S:.0f}s budget")
        ok = True
        return elapsed
    except DrillError:
        for name in procs.procs:
            tail = procs.tail(name)
            if tail:
                print(f"--- {name} log (last lines) ---\n{tail}", file=sys.stderr)
        print(f"--- notifications received: {len(receiver.notifications())}", file=sys.stderr)
        for note in receiver.notifications():
            print(f"  {note.path} {json.dumps(note.payload)[:400]}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        receiver.stop()
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"kept {workdir}")


def _terminate_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="the whole drill (default)")
    run.add_argument("--no-install", action="store_true", help="fail instead of installing missing packages")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    run.add_argument("--stage-timeout", type=float, default=STAGE_TIMEOUT_S)
    run.add_argument("--rules", type=Path, default=RULES, help="alert rules to drill (default: %(default)s)")
    run.add_argument("--alertmanager-config", type=Path, default=ALERTMANAGER_CONFIG)
    clear = sub.add_parser("clear-chaos", help="delete the chaos metrics from a Pushgateway")
    clear.add_argument("--pushgateway", default=os.environ.get("PUSHGATEWAY_URL") or DEFAULT_PUSHGATEWAY)
    inst = sub.add_parser("install", help="install the Debian prometheus packages when missing (root)")
    inst.add_argument("--best-effort", action="store_true", help="warn and exit 0 when they cannot be installed")
    args = parser.parse_args(argv)
    command = args.command or "run"

    signal.signal(signal.SIGTERM, _terminate_on_signal)
    try:
        if command == "install":
            try:
                install()
            except (DrillError, subprocess.CalledProcessError) as exc:
                if not args.best_effort:
                    raise
                print(
                    f"warning: prometheus tools not installed ({exc}); promtool tests will be skipped", file=sys.stderr
                )
            return 0
        if command == "clear-chaos":
            gateway = args.pushgateway.rstrip("/")
            try:
                clear_chaos(gateway)
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError):
                    raise
                # The chaos metrics live only in a Pushgateway: with none listening there, none exist there.
                print(f"PASS clear-chaos: no Pushgateway listens at {gateway}, so it holds no chaos metrics "
                      "(PUSHGATEWAY_URL names another)", flush=True)  # fmt: skip
                return 0
            say(f"deleted job={CHAOS_JOB} instance={CHAOS_GROUPING['instance']} from {gateway}")
            print(f"PASS clear-chaos: the chaos metrics are gone from {gateway}", flush=True)
            return 0
        if not getattr(args, "no_install", False):
            install()
        elapsed = run_drill(
            getattr(args, "stage_timeout", STAGE_TIMEOUT_S),
            getattr(args, "keep", False),
            getattr(args, "rules", RULES),
            getattr(args, "alertmanager_config", ALERTMANAGER_CONFIG),
        )
    except (DrillError, subprocess.CalledProcessError, urllib.error.URLError, OSError) as exc:
        print(f"ALERT DRILL {command.upper()} FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"ALERT DRILL PASSED in {elapsed:.1f}s: warning -> critical -> cleared -> resolved", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
