"""Run untrusted, model-written Python in a bubblewrap (``bwrap``) sandbox.

Linux only, standard library only.  Entry points: :func:`run_python`, :func:`sandbox_status` and
:func:`sandbox_isolation`.  Needs the ``bwrap`` binary (Debian package ``bubblewrap``) and a kernel that
lets an unprivileged user create user namespaces.

What a run sees
---------------
* **Its own mount namespace**, holding only: the interpreter binary, the directories on its ``-I -S``
  ``sys.path`` (the stdlib and ``lib-dynload``, with ``site-packages`` hidden) and the shared libraries
  those link, all read-only at their host paths; a fresh ``/proc`` for its own PID namespace; a minimal
  ``/dev``; an empty, size-capped tmpfs as ``/tmp`` (also the working directory) and as ``/dev/shm``; the
  code as ``/sandbox/main.py`` (read-only).  No ``/etc``, no project tree, no database, no ``var/``, no
  host ``/tmp``, no host ``/proc``.
* **Every namespace unshared** (user, mount, PID, network, IPC, UTS, cgroup): the network is a loopback
  that is down, Unix sockets on the host are not in the tree, no process outside the run can be seen or
  signalled.  No nested user namespaces, every capability dropped, a new session (no terminal),
  ``--die-with-parent``.  The code is PID 1 of its namespace (``--as-pid-1``): when it ends, the kernel
  kills whatever it left behind.
* **An empty environment** but ``PATH``, ``LANG``, ``HOME`` and ``TMPDIR``; bwrap itself is started with
  an empty environment too (its PID 1 is visible in ``/proc/1``).
* **An unprivileged uid.**  When the gateway runs as root, each run gets a throw-away uid from
  :data:`SANDBOX_UID_RANGE` (the kernel does not enforce ``RLIMIT_NPROC`` for root); otherwise the
  gateway's own uid, mapped into the run's user namespace.
* **rlimits**, set inside before the code starts: CPU (a hard limit: SIGKILL), address space, file size,
  open files, processes (counted in the run's own user namespace), no core dumps.
* **A wall deadline and an output cap, enforced by the parent**: past ``wall_s``, or once stdout or stderr
  passes ``output_limit`` bytes, bwrap's process group is killed, and with it the whole PID namespace.

As root, a launcher first: bwrap, running as the throw-away uid, opens its bind sources itself, and the
interpreter may live where such a uid cannot reach (pyenv under ``/root``, mode 0700).  So a small
launcher (the same interpreter, ``-I -S``, no user code) enters a private mount namespace, binds each
source onto a world-readable staging directory of empty mount points (``$TMPDIR/swarm-sandbox-stage-*``,
made once, checked on reuse), drops to the throw-away uid and execs bwrap, which binds from there.  The
host's mount table does not change.

Fail closed: :func:`sandbox_status` probes once per process (a failure is retried after
``_RETRY_PROBE_S``); when bwrap is missing or its probe fails, :func:`run_python` raises
:class:`SandboxUnavailable` and nothing runs.  There is no weaker fallback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SANDBOX_UID_RANGE", "SandboxResult", "SandboxUnavailable", "run_python", "sandbox_isolation", "sandbox_status",
]  # fmt: skip

logger = logging.getLogger(__name__)

#: Throw-away uids/gids used for runs when the parent is root (one random value per run).
SANDBOX_UID_RANGE = (1_800_000_000, 1_900_000_000)
ISOLATION = "bwrap"
UNAVAILABLE = "unavailable"

_ENV_PYTHON = "SWARM_SANDBOX_PYTHON"  # optional override of the interpreter used inside the sandbox
_ENV_BWRAP = "SWARM_SANDBOX_BWRAP"  # optional path of the bwrap binary (default: found on PATH)
_SCRIPT = "/sandbox/main.py"
_DRAIN_S = 0.3  # after bwrap exits, how long to keep reading output still buffered in the pipes
_REAP_S = 3.0  # after killing the code, how long bwrap gets to reap it before its group is killed
_RETRY_PROBE_S = 60.0  # a failed probe is tried again after this long
_EXTRA_PROCS = 2  # bwrap's PID 1 and the code's own process, on top of max_procs
_EXIT_LAUNCHER = 125  # the root launcher could not set up (its reason is on stderr)
MIB = 1024 * 1024

# Runs inside the sandbox before the code: sets the limits, then replaces itself with the code's interpreter.
_BOOT = r"""
import os, resource, sys
cpu, mem, fsize, nofile, nproc = (int(a) for a in sys.argv[1:6])
for res, soft, hard in ((resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_CPU, cpu, cpu),
                        (resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_FSIZE, fsize, fsize),
                        (resource.RLIMIT_NOFILE, nofile, nofile), (resource.RLIMIT_NPROC, nproc, nproc)):
    resource.setrlimit(res, (soft, hard))
os.execv(sys.executable, [sys.executable, "-I", "-S", sys.argv[6]])
"""

# As root only: a private mount namespace, the bind sources staged where the throw-away uid can reach them,
# then that uid, then bwrap.  argv: stage dir, uid, JSON list of sources, bwrap's argv.
_LAUNCHER = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
def check(rc, what):
    if rc != 0:
        sys.stderr.write("sandbox launcher: %s: %s\n" % (what, os.strerror(ctypes.get_errno())))
        os._exit(125)
stage, uid, sources, argv = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
check(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None), "make / private")  # MS_REC | MS_PRIVATE
for i, src in enumerate(sources):
    check(libc.mount(src.encode(), os.path.join(stage, str(i)).encode(), None, 0x1000 | 0x4000, None),
          "bind " + src)  # MS_BIND | MS_REC
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
os.execv(argv[0], argv)
"""

_PROBE_CODE = "import os\nprint('ok', os.getuid() != 0, os.path.exists('/etc'), os.path.exists('/sandbox/main.py'))\n"
_PROBE_EXPECT = "ok True False True\n"


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exit code 0 and not killed
    exit_code: int | None  # negative = killed by that signal (subprocess convention)
    stdout: str  # at most output_limit characters
    stderr: str  # at most output_limit characters
    timed_out: bool  # the wall-clock limit was hit
    killed_reason: str | None  # "wall", "output", "cpu", "memory", "file", "procs", "signal", "spawn" when known
    duration_s: float
    isolation: str  # "bwrap"
    truncated: bool = False  # stdout or stderr passed output_limit (the run was killed there)


class SandboxUnavailable(RuntimeError):
    """No working sandbox on this machine: the code is not run at all."""


@dataclass(frozen=True)
class _Plan:
    bwrap: str
    interpreter: str  # the real interpreter binary, at the same path inside and outside
    binds: tuple[str, ...]  # host paths bound read-only at the same path inside
    masked: tuple[str, ...]  # directories inside the binds hidden under an empty tmpfs (site-packages)
    stage: str | None  # root only: where the launcher stages the binds (entry i is binds[i])


# --------------------------------------------------------------------------- plan: what to bind
def _interpreter() -> str:
    chosen = os.environ.get(_ENV_PYTHON) or getattr(sys, "_base_executable", "") or sys.executable
    return os.path.realpath(chosen)


def _interpreter_paths(interpreter: str) -> tuple[list[str], list[str]]:
    """(directories on the interpreter's -I -S sys.path, its site-packages directories), asked of it."""
    ask = (
        "import json, os, site, sys\n"
        "print(json.dumps([[os.path.realpath(p) for p in sys.path if os.path.isdir(p)],"
        " [os.path.realpath(p) for p in site.getsitepackages() if os.path.isdir(p)]]))\n"
    )
    out = subprocess.run([interpreter, "-I", "-S", "-c", ask], capture_output=True, text=True, timeout=30, env={},
                         check=True).stdout  # fmt: skip
    paths, site_dirs = json.loads(out)
    return paths, site_dirs


_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def _shared_libraries(binaries: list[str]) -> list[str]:
    """Every shared library (and the loader) that ``binaries`` link, as ``ldd`` names them."""
    ldd = shutil.which("ldd") or "/usr/bin/ldd"
    out = subprocess.run([ldd, *binaries], capture_output=True, text=True, timeout=60, env={}).stdout
    return sorted({m.group(1) for m in _LDD_PATH.finditer(out)})


def _covered(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _plan_binds(interpreter: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    paths, site_dirs = _interpreter_paths(interpreter)
    dirs: list[str] = []
    for path in sorted(set(paths), key=len):
        if not _covered(path, dirs):
            dirs.append(path)
    extensions = []
    for top in dirs:
        for root, subdirs, files in os.walk(top):
            subdirs[:] = [d for d in subdirs if not _covered(os.path.join(root, d), site_dirs)]
            extensions += [os.path.join(root, f) for f in files if f.endswith(".so")]
    libs = [lib for lib in _shared_libraries([interpreter, *extensions]) if not _covered(lib, dirs)]
    binds = tuple(dict.fromkeys([interpreter, *dirs, *libs]))
    masked = tuple(d for d in site_dirs if _covered(d, dirs))
    return binds, masked


def _stage_ok(stage: str, kinds: list[bool]) -> bool:
    """`stage` is ours, not writable by others, and holds exactly the expected mount points."""
    try:
        st = os.lstat(stage)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return False
        if sorted(os.listdir(stage)) != sorted(str(i) for i in range(len(kinds))):
            return False
        for i, is_dir in enumerate(kinds):
            entry = os.lstat(os.path.join(stage, str(i)))
            kind_ok = stat.S_ISDIR(entry.st_mode) if is_dir else stat.S_ISREG(entry.st_mode)
            if entry.st_uid != os.geteuid() or not kind_ok:
                return False
    except OSError:
        return False
    return True


def _make_stage(binds: tuple[str, ...]) -> str:
    """A world-readable directory with one empty mount point per bind (root only).

    Shared by every process with the same binds (its name is their digest), made once and checked on reuse.
    """
    kinds = [os.path.isdir(path) for path in binds]
    digest = hashlib.sha256(json.dumps([binds, kinds]).encode()).hexdigest()[:16]
    stage = os.path.join(tempfile.gettempdir(), f"swarm-sandbox-stage-{os.geteuid()}-{digest}")
    if _stage_ok(stage, kinds):
        return stage
    fresh = tempfile.mkdtemp(prefix="swarm-sandbox-stage-new-")
    os.chmod(fresh, 0o755)  # noqa: S103 - the throw-away uid must reach the mount points; they hold nothing
    for i, is_dir in enumerate(kinds):
        target = os.path.join(fresh, str(i))
        if is_dir:
            os.mkdir(target)
        else:
            open(target, "xb").close()
    try:
        os.rename(fresh, stage)  # atomic; fails if another process made it first (or something else is there)
    except OSError:
        shutil.rmtree(fresh, ignore_errors=True)
    if not _stage_ok(stage, kinds):
        raise SandboxUnavailable(f"cannot prepare the staging directory {stage}")
    return stage


def _build_plan() -> _Plan:
    bwrap = os.environ.get(_ENV_BWRAP) or shutil.which("bwrap")
    if not bwrap or not os.access(bwrap, os.X_OK):
        raise SandboxUnavailable("bwrap not found (install the bubblewrap package)")
    interpreter = _interpreter()
    binds, masked = _plan_binds(interpreter)
    stage = _make_stage(binds) if os.geteuid() == 0 else None
    return _Plan(bwrap=bwrap, interpreter=interpreter, binds=binds, masked=masked, stage=stage)


# --------------------------------------------------------------------------- probe (cached)
_PROBE_LOCK = threading.Lock()
_PLAN: _Plan | None = None
_FAILURE: tuple[str, float] | None = None  # (reason, monotonic time of the failed probe)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _probe() -> _Plan:
    """The checked plan, or SandboxUnavailable with the reason.  Cached; a failure is retried after a while."""
    global _PLAN, _FAILURE
    with _PROBE_LOCK:
        if _PLAN is not None:
            return _PLAN
        if _FAILURE is not None and time.monotonic() - _FAILURE[1] < _RETRY_PROBE_S:
            raise SandboxUnavailable(_FAILURE[0])
        try:
            plan = _build_plan()
            res = _execute(plan, code=_PROBE_CODE, wall_s=20.0)
            if res.stdout != _PROBE_EXPECT or not res.ok:
                detail = _last_line(res.stderr) or f"exit {res.exit_code}, output {res.stdout[:80]!r}"
                raise SandboxUnavailable(f"bwrap probe failed: {detail}")
        except SandboxUnavailable as exc:
            reason = str(exc)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            reason = f"bwrap probe failed: {type(exc).__name__}: {exc}"
        else:
            _PLAN, _FAILURE = plan, None
            logger.info("sandbox: bwrap %s, interpreter %s, %d read-only binds", plan.bwrap, plan.interpreter,
                        len(plan.binds))  # fmt: skip
            return plan
        _FAILURE = (reason, time.monotonic())
        logger.error("sandbox unavailable, the code head is off: %s", reason)
        raise SandboxUnavailable(reason)


def sandbox_status() -> dict[str, Any]:
    """{"ok": bool, "isolation": "bwrap" | "unavailable", "reason": why not (None when ok)}.  Cached."""
    try:
        _probe()
    except SandboxUnavailable as exc:
        return {"ok": False, "isolation": UNAVAILABLE, "reason": str(exc)}
    return {"ok": True, "isolation": ISOLATION, "reason": None}


def sandbox_isolation() -> str:
    """The isolation in use: "bwrap", or "unavailable" when no code can run here.  Cached."""
    return sandbox_status()["isolation"]


# --------------------------------------------------------------------------- running
def run_python(
    *,
    code: str,
    stdin: str = "",
    wall_s: float = 5.0,
    cpu_s: int = 4,
    memory_mb: int = 256,
    file_mb: int = 8,
    max_procs: int = 32,
    output_limit: int = 64_000,
) -> SandboxResult:
    """Run ``code`` with ``python -I -S`` in the sandbox described in the module docstring.

    Never raises for anything the code does: a child that cannot be started gives ``ok=False``,
    ``exit_code=None``, ``killed_reason="spawn"``.  Raises :class:`SandboxUnavailable` when there is no
    working sandbox on this machine (then nothing runs).
    """
    plan = _probe()
    return _execute(plan, code=code, stdin=stdin, wall_s=wall_s, cpu_s=cpu_s, memory_mb=memory_mb, file_mb=file_mb,
                    max_procs=max_procs, output_limit=output_limit)  # fmt: skip


def _bwrap_argv(plan: _Plan, *, code_fd: int, tmp_bytes: int, limits: list[int]) -> list[str]:
    env = {"PATH": os.path.dirname(plan.interpreter), "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
    argv = [plan.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--as-pid-1", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv"]  # fmt: skip
    for key, value in env.items():
        argv += ["--setenv", key, value]
    for i, path in enumerate(plan.binds):
        argv += ["--ro-bind", os.path.join(plan.stage, str(i)) if plan.stage else path, path]
    for path in plan.masked:
        argv += ["--tmpfs", path, "--remount-ro", path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/dev/shm",
             "--size", str(tmp_bytes), "--tmpfs", "/tmp", "--ro-bind-data", str(code_fd), _SCRIPT, "--chdir", "/tmp",
             "--", plan.interpreter, "-I", "-S", "-c", _BOOT, *(str(n) for n in limits), _SCRIPT]  # fmt: skip
    return argv


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _execute(
    plan: _Plan,
    *,
    code: str,
    stdin: str = "",
    wall_s: float = 5.0,
    cpu_s: int = 4,
    memory_mb: int = 256,
    file_mb: int = 8,
    max_procs: int = 32,
    output_limit: int = 64_000,
) -> SandboxResult:
    cpu = max(1, int(cpu_s))
    limits = [cpu, memory_mb * MIB, file_mb * MIB, 256, max_procs + _EXTRA_PROCS]
    uid = random.SystemRandom().randrange(*SANDBOX_UID_RANGE) if plan.stage else None
    code_fd = _memfd("sandbox-code", code.encode("utf-8", "surrogatepass"))
    stdin_fd = _memfd("sandbox-stdin", stdin.encode("utf-8", "replace"))
    start = time.monotonic()
    try:
        argv = _bwrap_argv(plan, code_fd=code_fd, tmp_bytes=max(4, 4 * file_mb) * MIB, limits=limits)
        if plan.stage is not None:
            argv = [plan.interpreter, "-I", "-S", "-c", _LAUNCHER, plan.stage, str(uid), json.dumps(plan.binds), *argv]
        try:
            proc = subprocess.Popen(argv, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={},
                                    cwd="/", close_fds=True, pass_fds=(code_fd,), start_new_session=True)  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("sandbox: could not start bwrap: %s", exc)
            return SandboxResult(ok=False, exit_code=None, stdout="", stderr=f"sandbox: could not start: {exc}",
                                 timed_out=False, killed_reason="spawn", duration_s=time.monotonic() - start,
                                 isolation=ISOLATION)  # fmt: skip
    finally:
        os.close(code_fd)
        os.close(stdin_fd)
    return _supervise(proc, start=start, wall_s=wall_s, cpu_s=cpu, output_limit=output_limit)


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _kill_run(proc: subprocess.Popen[bytes]) -> tuple[int, float] | None:
    """Kill a run that is still going and reap bwrap; its (wait status, CPU seconds), None if it never went.

    The code is PID 1 of the run's namespace (``--as-pid-1``) and bwrap's only child: SIGKILL it first (the
    kernel then kills everything else in the namespace) so that bwrap reaps it and exits by itself.  Killing
    bwrap first would orphan it to the host's init, which may never reap it.  bwrap's process group goes
    last, in case it does not exit.
    """
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as fh:
            children = [int(pid) for pid in fh.read().split()]
    except (OSError, ValueError):
        children = []
    for pid in children:  # still bwrap's child (reaped only by bwrap): the pid cannot have been reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + _REAP_S
    while True:
        try:
            pid, st, usage = os.wait4(proc.pid, os.WNOHANG if time.monotonic() < end else 0)
        except ChildProcessError:
            return None
        if pid:
            return st, usage.ru_utime + usage.ru_stime
        if time.monotonic() >= end - 0.5 or not children:
            _killpg(proc)
        time.sleep(0.005)


def _supervise(
    proc: subprocess.Popen[bytes], *, start: float, wall_s: float, cpu_s: int, output_limit: int
) -> SandboxResult:
    assert proc.stdout is not None and proc.stderr is not None
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    timed_out = truncated = False
    status: tuple[int, float] | None = None  # (wait status, CPU seconds of the whole run)
    deadline = start + wall_s
    drain_until = deadline
    sel = selectors.DefaultSelector()
    try:
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        while not truncated:
            now = time.monotonic()
            if status is None:
                pid, st, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    status = (st, usage.ru_utime + usage.ru_stime)
                    drain_until = min(drain_until, now + _DRAIN_S)
            if status is None and now >= deadline:
                timed_out = True
                break
            if status is not None and (not sel.get_map() or now >= drain_until):
                break
            if not sel.get_map():  # both pipes closed, the process not gone yet
                time.sleep(min(0.005, max(0.0, deadline - now)))
                continue
            for key, _ in sel.select(timeout=min(0.05, max(0.0, drain_until - now))):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                buf += chunk[: output_limit + 1 - len(buf)]
                truncated = truncated or len(buf) > output_limit
    finally:
        sel.close()
        if status is None:
            status = _kill_run(proc)
        _killpg(proc)  # anything else left in bwrap's group (nothing, normally)
        proc.stdout.close()
        proc.stderr.close()
    proc.returncode = exit_code = _exit_code(status[0]) if status else None
    out, err = (bytes(b[:output_limit]).decode("utf-8", "replace") for b in bufs.values())
    reason = _killed_reason(exit_code, timed_out=timed_out, truncated=truncated, cpu=status[1] if status else 0.0,
                            cpu_s=cpu_s, err=err)  # fmt: skip
    return SandboxResult(ok=exit_code == 0 and reason is None, exit_code=exit_code, stdout=out[:output_limit],
                         stderr=err[:output_limit], timed_out=timed_out, killed_reason=reason,
                         duration_s=time.monotonic() - start, isolation=ISOLATION, truncated=truncated)  # fmt: skip


def _exit_code(status: int) -> int:
    """bwrap exits with the code's exit code, or 128 + the signal that killed it; as subprocess reports it."""
    code = os.waitstatus_to_exitcode(status)
    if 128 < code < 128 + signal.NSIG:
        return -(code - 128)
    return code


def _killed_reason(
    code: int | None, *, timed_out: bool, truncated: bool, cpu: float, cpu_s: int, err: str
) -> str | None:
    """Best-effort reason the run did not finish normally (``cpu`` = CPU seconds the run used)."""
    if timed_out:
        return "wall"
    if truncated:
        return "output"
    if code is None:
        return "spawn"
    if code == 0:
        return None
    if code == -signal.SIGKILL and cpu >= cpu_s - 0.05:  # hard RLIMIT_CPU (SIGXCPU is lost on a PID 1)
        return "cpu"
    if code == -signal.SIGXFSZ:
        return "file"
    if code < 0:
        return "signal"
    if "MemoryError" in err:
        return "memory"
    if "File too large" in err:
        return "file"
    if "BlockingIOError: [Errno 11]" in err:
        return "procs"
    return None
