"""Several hosts on one machine: Linux network namespaces on a bridge of the test's own.

Each `Host` is a network namespace with its own address, joined to a bridge in the root namespace
(where the test runs) by a veth pair, and each process started on it also gets its own UTS namespace
with the host's name, so `socket.gethostname()` and Celery's `%h` say which host it is. Nothing is
shared between hosts but the network: each host gets its own var, model and metrics directories.
Cutting a host's link (`Host.link(False)`) takes its veth down; the others keep talking.

Needs root (CAP_NET_ADMIN) and iproute2; `require_netns()` skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def require_netns() -> None:
    """Skip the test, saying why, where namespaces cannot be made."""
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.skip("iproute2 (ip) and util-linux (unshare) are needed for the host namespaces")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN): run make test-cluster as root")
    probe = f"swprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    _ip("netns", "del", probe, check=False)


@dataclass
class Host:
    name: str
    ns: str
    ip: str
    veth: str  # the root side of its link: down = the host is cut off
    dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, label: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
        """Start `argv` on this host (its network namespace, its own hostname); output to <dir>/<label>.log."""
        wrapped = ["ip", "netns", "exec", self.ns, "unshare", "--uts", "sh", "-c",
                   f'hostname {self.name} && exec "$@"', "sh", *argv]  # fmt: skip
        log = open(self.dir / f"{label}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(wrapped, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs[label] = proc
        return proc

    def exec(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command on this host to completion."""
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], **kwargs)

    def link(self, up: bool) -> None:
        _ip("link", "set", self.veth, "up" if up else "down")

    def kill(self, label: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(label, None)
        if proc and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)

    def kill_everything(self) -> list[int]:
        """SIGKILL every process in this host's namespace at once (a host that dies); their pids."""
        out = _ip("netns", "pids", self.ns, check=False).stdout.split()
        pids = [int(p) for p in out]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
        self.procs.clear()
        return pids

    def log(self, label: str, tail: int = 4000) -> str:
        path = self.dir / f"{label}.log"
        return path.read_text(errors="replace")[-tail:] if path.is_file() else ""


class Network:
    """A bridge in the root namespace (address .254) and hosts on it (.1, .2, ...)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}{random.randint(0, 99):02d}"
        self.bridge = f"swbr{tag}"
        self.tag = tag
        self.prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        self.gateway = f"{self.prefix}.254"
        self.hosts: dict[str, Host] = {}
        self.root = Path(tempfile.mkdtemp(prefix="swarm-cluster-"))
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        ns = f"sw{self.tag}{name}"
        outside, inside = f"sw{self.tag}o{index}", f"sw{self.tag}i{index}"
        ip = f"{self.prefix}.{index}"
        _ip("netns", "add", ns)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        for args in (("link", "set", "lo", "up"), ("addr", "add", f"{ip}/24", "dev", inside),
                     ("link", "set", inside, "up"), ("route", "add", "default", "via", self.gateway)):  # fmt: skip
            _ip("-n", ns, *args)
        host_dir = self.root / name
        host_dir.mkdir()
        host = Host(name=name, ns=ns, ip=ip, veth=outside, dir=host_dir)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill_everything()
            _ip("link", "del", host.veth, check=False)
            _ip("netns", "del", host.ns, check=False)
        _ip("link", "del", self.bridge, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
