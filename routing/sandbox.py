"""Run untrusted, model-written Python code in a constrained child process.

Linux only.  Standard library only.  Entry points: :func:`run_python` and
:func:`sandbox_isolation`.

Layers of containment, outermost first
--------------------------------------

* **Separate process / session.**  The code runs in ``subprocess.Popen(...,
  start_new_session=True)`` so the child leads its own session and process
  group.  At the end of every run (normal exit, wall-clock limit, error) the
  whole group is killed with ``os.killpg(pgid, SIGKILL)``; then ``/proc`` is
  scanned for anything still in that session/group or still running under the
  run's uid, which is killed too, until nothing is left.
* **Isolated interpreter.**  ``python -I -S`` (no ``PYTHON*`` variables, no
  user site, no ``site`` module, script directory not on ``sys.path``).
* **Scrubbed environment.**  Only ``PATH=/usr/bin:/bin``, ``LANG``, ``HOME``
  and ``TMPDIR`` (both the run's temp dir).  Nothing is inherited from the
  parent environment, so API keys and other secrets never reach the child.
* **Private working directory.**  A fresh ``mkdtemp`` directory (mode 0700,
  owned by the sandbox user) is the cwd, holds the code as ``main.py`` and is
  removed afterwards.
* **Unprivileged user.**  When the parent runs as root, the child drops to a
  throw-away uid/gid drawn at random from :data:`SANDBOX_UID_RANGE`, with no
  supplementary groups and ``PR_SET_NO_NEW_PRIVS``.  Like ``nobody`` it cannot
  read root-only files (mode 0600/0640) or root's ``/proc/<pid>/environ``, and
  ``RLIMIT_NPROC`` is enforced for it (it is not enforced for root).  Unlike a
  shared ``nobody``, concurrent runs cannot read each other's temp dirs or
  signal/ptrace each other, and every process of a run can be found (and
  killed) by its uid.  When the parent is *not* root no uid change is possible:
  the child runs as the parent's own user (it can then read whatever that user
  can read; the network/pid namespaces below are then created inside a user
  namespace if the kernel allows unprivileged user namespaces).
* **rlimits** (set in ``preexec_fn``): ``RLIMIT_CPU`` (soft ``cpu_s``, hard
  ``cpu_s + 1``), ``RLIMIT_AS`` (``memory_mb``), ``RLIMIT_FSIZE``
  (``file_mb``), ``RLIMIT_NPROC`` (``max_procs`` on top of what the target uid
  already runs; threads count as processes), ``RLIMIT_CORE=0`` and
  ``RLIMIT_NOFILE``.  ``PR_SET_PDEATHSIG=SIGKILL`` kills the child if the
  spawning thread dies.
* **Wall clock.**  The parent enforces ``wall_s`` itself (a ``sleep`` uses no
  CPU, so ``RLIMIT_CPU`` alone would not catch it) and kills the group.
* **No network.**  :func:`sandbox_isolation` probes once whether
  ``unshare(CLONE_NEWNET)`` works (via ``libc.unshare`` through ctypes inside
  ``preexec_fn``; ``os.unshare`` only exists from Python 3.12).  If it does,
  the child gets a fresh network namespace whose only interface is a *down*
  loopback: every connect fails, also for any program the code might exec.
  ``isolation == "netns"``.  When possible a PID namespace is created as well:
  the code then runs under a tiny init process, and when the code's process
  ends (or the group is killed) the kernel kills every process left in that
  namespace, including ones that called ``setsid()`` to leave the group.

  **Fallback** (``isolation == "socket-shim"``), used when no namespace can be
  created (no ``CAP_SYS_ADMIN``, user namespaces disabled, non-Linux): a
  bootstrap runs before the user code and replaces ``socket.socket``,
  ``socket.create_connection``, ``_socket.socket``, ``getaddrinfo`` and
  friends with callables that raise ``PermissionError``.  This is **much
  weaker**: it stops accidental network use by ordinary Python code, but
  hostile code can get the real socket type back (e.g. via
  ``object.__subclasses__()``), use ``ctypes``, or exec another program
  (``curl``, a fresh interpreter) that has no shim.  Do not rely on it to
  contain deliberately malicious code; run the gateway where namespaces work.

Limits of this module: it is not a full container.  World-readable files on
the host stay readable, ``/tmp`` and ``/dev/shm`` outside the run's directory
stay writable (bounded by ``RLIMIT_FSIZE`` per file), and there is no cgroup
(so no limit on total memory across processes beyond ``max_procs`` x
``memory_mb``).  With neither a PID namespace nor a throw-away uid (non-root
parent on a kernel without user namespaces) a process that calls ``setsid()``
leaves the session and cannot be found by the cleanup.  ``preexec_fn`` is used, which the ``subprocess`` docs call not
thread-safe; it only calls pre-resolved C functions (no imports, no locks).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import random
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SANDBOX_UID_RANGE", "SandboxResult", "SandboxUnavailable", "run_python", "sandbox_isolation"]

logger = logging.getLogger(__name__)

#: Throw-away uids/gids used for runs when the parent is root (one random value per run).
SANDBOX_UID_RANGE = (1_800_000_000, 1_900_000_000)

_CLONE_NEWNET = 0x40000000  # CLONE_NEWNET
_CLONE_NEWPID = 0x20000000
_CLONE_NEWUSER = 0x10000000
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38

_ENV_PYTHON = "SWARM_SANDBOX_PYTHON"  # optional override of the interpreter used inside the sandbox
_DRAIN_S = 0.3  # after the child ends, how long to keep reading buffered output
_GRACE_S = 1.0  # after a timeout, how long W gets to reap the killed run and exit by itself
_REAP_S = 2.0  # how long to wait for the killed child to be reaped / its group to vanish
_EXTRA_PROCS = 2  # the supervisor + namespace init processes (pidns mode) on top of max_procs

MIB = 1024 * 1024

_Limits = list[tuple[int, tuple[int, int]]]  # (RLIMIT_*, (soft, hard))


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exit code 0 and not killed
    exit_code: int | None  # negative = killed by that signal (subprocess convention)
    stdout: str  # truncated to output_limit
    stderr: str  # truncated to output_limit
    timed_out: bool  # the wall-clock limit was hit
    killed_reason: str | None  # "wall", "cpu", "memory", "file", "procs", "signal", "spawn" when known
    duration_s: float
    isolation: str  # "netns" when network namespace isolation was used, else the fallback name
    truncated: bool = False  # stdout or stderr was cut at output_limit


class SandboxUnavailable(RuntimeError):
    """No Python interpreter could be started as the sandbox user at all."""


@dataclass(frozen=True)
class _Config:
    interpreter: str
    mode: str  # "netns" | "socket-shim"
    flags: int  # unshare() flags applied in preexec_fn
    pidns: bool  # flags include CLONE_NEWPID: the bootstrap forks an init for the namespace


# --------------------------------------------------------------------------- bootstrap
# Runs in the child interpreter (as the sandbox user, rlimits already applied) *before* the user
# code.  argv: [-c, script, "pidns" | "subreaper", shim(0/1), unique_uid(0/1)].
#
# Process tree.  W is the process Popen started (session leader).  It never runs user code; it
# forks the user-code process U and reaps it, so no orphan is ever left to the host's init (which
# may not reap: e.g. a container whose pid 1 is the app):
#   pidns:     W (host ns) -> I (pid 1 of a new PID namespace; reaps orphans) -> U.  When U ends,
#              I exits and the kernel SIGKILLs whatever is left in the namespace (setsid escapees
#              included) and reaps it.  U's wait status travels to W through a pipe.
#   subreaper: W (PR_SET_CHILD_SUBREAPER, reaps orphans) -> U.  When U ends, W kills the rest of
#              the run: kill(-1) when it runs under its own throw-away uid (this reaches setsid
#              escapees), plus everything in its session; then reaps them.
# W finally exits the way U did (same exit code, or the same signal).  On a timeout the parent
# kills everything of the run except W; W then reaps, cleans up and exits as above.
_BOOTSTRAP = r"""
import os, sys

def _sbx_relay(status):
    if os.WIFSIGNALED(status):
        import signal
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)

def _sbx_wait_for(child):
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return None
        if pid == child:
            return status

def _sbx_kill_rest(unique_uid):
    me = os.getpid()
    if unique_uid:
        try:
            os.kill(-1, 9)  # every process of this run's uid except ourselves
        except OSError:
            pass
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                data = fh.read()
            fields = data[data.rfind(b")") + 2:].split()
            if int(fields[2]) == me or int(fields[3]) == me:
                os.kill(int(name), 9)
        except (OSError, ValueError, IndexError):
            pass

def _sbx_reap_all(seconds):
    import time
    end = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > end:
                return
            time.sleep(0.005)

def _sbx_supervise_pidns():
    r, w = os.pipe()
    init = os.fork()
    if init:
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 64)
            if not chunk:
                break
            data += chunk
        _, status = os.waitpid(init, 0)
        _sbx_relay(int(data) if data else status)
    os.close(r)
    user = os.fork()
    if user == 0:
        os.close(w)
        return
    status = _sbx_wait_for(user)
    if status is not None:
        os.write(w, str(status).encode())
    os._exit(0)

def _sbx_supervise_subreaper(unique_uid):
    try:
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
    user = os.fork()
    if user == 0:
        return
    status = _sbx_wait_for(user)
    _sbx_kill_rest(unique_uid)
    _sbx_reap_all(1.0)
    _sbx_relay(256 if status is None else status)

def _sbx_shim():
    import socket, _socket

    def _denied(*args, **kwargs):
        raise PermissionError(13, "network access is disabled in this sandbox")

    class DeniedSocket:
        def __new__(cls, *args, **kwargs):
            _denied()

    real = (socket.socket, _socket.socket)
    for mod in (socket, _socket):
        for name, value in list(vars(mod).items()):
            if any(value is r for r in real):
                setattr(mod, name, DeniedSocket)
        for name in ("create_connection", "create_server", "socketpair", "fromfd", "dup",
                     "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                     "getnameinfo", "send_fds", "recv_fds"):
            if hasattr(mod, name):
                setattr(mod, name, _denied)

def _sbx_run(path):
    main = type(sys)("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = [path]
    try:
        with open(path, "rb") as fh:
            code = compile(fh.read(), path, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        try:
            import traceback
            traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
            sys.stderr.flush()
        except BaseException:
            raise exc
        sys.exit(1)

_sbx_path, _sbx_mode, _sbx_shim_on, _sbx_unique = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if _sbx_mode == "pidns":
    _sbx_supervise_pidns()
else:
    _sbx_supervise_subreaper(_sbx_unique == "1")
if _sbx_shim_on == "1":
    _sbx_shim()
_sbx_run(_sbx_path)
"""


# --------------------------------------------------------------------------- libc helpers
def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare.argtypes = [ctypes.c_int]
        libc.unshare.restype = ctypes.c_int
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        libc.prctl.restype = ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def _make_preexec(*, flags: int, uid: int | None, limits: _Limits) -> Callable[[], None]:
    """Build the function run in the forked child before exec.

    Everything is resolved here, in the parent, so the child only calls C functions.
    Order: (as root) unshare + rlimits, then drop to ``uid``; with a user namespace the
    drop comes first and the unshare is done as the unprivileged user (an unshare as root
    into a user namespace would keep root's file ownership).
    """
    libc = _LIBC
    unshare = libc.unshare if libc is not None else None
    prctl = libc.prctl if libc is not None else None
    get_errno = ctypes.get_errno
    setrlimit = resource.setrlimit
    userns_first_drop = bool(flags & _CLONE_NEWUSER)

    def do_unshare() -> None:
        if not flags:
            return
        if unshare is None:
            raise OSError("libc unshare() unavailable")
        if unshare(flags) != 0:
            err = get_errno()
            raise OSError(err, os.strerror(err))

    def drop() -> None:
        if uid is None:
            return
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    def preexec() -> None:
        if not userns_first_drop:
            do_unshare()
        for res, value in limits:
            setrlimit(res, value)
        drop()
        if prctl is not None:
            prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
        if userns_first_drop:
            do_unshare()

    return preexec


# --------------------------------------------------------------------------- /proc helpers
def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, session) of ``pid`` or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def _proc_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _leftovers(*, sid: int, uid: int | None) -> list[int]:
    """Live (non-zombie) processes still belonging to a run: same session/group, or its uid."""
    me = os.getpid()
    found = []
    for pid in _all_pids():
        if pid == me:
            continue
        st = _proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            continue
        if st[2] == sid or st[3] == sid or (uid is not None and _proc_uid(pid) == uid):
            found.append(pid)
    return found


def _count_tasks(uid: int) -> int:
    """Tasks (threads included) run by real uid ``uid``: what RLIMIT_NPROC counts."""
    total = 0
    for pid in _all_pids():
        if _proc_uid(pid) != uid:
            continue
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            total += 1
    return total


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_members(*, sid: int, uid: int | None, exclude: int) -> None:
    for pid in _leftovers(sid=sid, uid=uid):
        if pid != exclude:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _sweep(*, sid: int, uid: int | None) -> list[int]:
    """Kill the group, then everything in /proc that still belongs to the run; return survivors."""
    deadline = time.monotonic() + _REAP_S
    while True:
        _killpg(sid)
        left = _leftovers(sid=sid, uid=uid)
        if not left or time.monotonic() >= deadline:
            return left
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


# --------------------------------------------------------------------------- configuration
def _pick_uid() -> int | None:
    if os.geteuid() != 0:
        return None
    return random.SystemRandom().randrange(*SANDBOX_UID_RANGE)


def _interpreter_candidates() -> list[str]:
    raw = [
        os.environ.get(_ENV_PYTHON, ""),
        sys.executable,
        getattr(sys, "_base_executable", ""),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
        "/bin/python3",
    ]
    seen: list[str] = []
    for path in raw:
        if not path:
            continue
        real = os.path.realpath(path)
        if os.path.isfile(real) and real not in seen:
            seen.append(real)
    return seen


def _namespace_options() -> list[tuple[int, bool]]:
    net, pid, user = _CLONE_NEWNET, _CLONE_NEWPID, _CLONE_NEWUSER
    # As root: plain namespaces first.  A user namespace is the only way for a non-root parent (and
    # for root where CAP_SYS_ADMIN is missing); then the uid is dropped *before* unsharing.
    opts = [user | net | pid, user | net]
    if os.geteuid() == 0:
        opts = [net | pid, net, *opts]
    return [(flags, bool(flags & pid)) for flags in opts]


_PROBE_LOCK = threading.Lock()
_PROBED: _Config | None = None
_PROBE_FAILED = False


def _probe() -> _Config | None:
    """Find the strongest configuration this kernel allows; cached for the process lifetime."""
    global _PROBED, _PROBE_FAILED
    with _PROBE_LOCK:
        if _PROBED is not None or _PROBE_FAILED:
            return _PROBED
        options = [(flags, pidns, "netns") for flags, pidns in _namespace_options()]
        if _LIBC is None or not sys.platform.startswith("linux"):
            options = []
        options.append((0, False, "socket-shim"))
        for flags, pidns, mode in options:
            for interp in _interpreter_candidates():
                cfg = _Config(interpreter=interp, mode=mode, flags=flags, pidns=pidns)
                try:
                    res = _execute(cfg, code="import os\nprint('ok', os.getpid() != 1)\n", wall_s=10.0)
                except (OSError, subprocess.SubprocessError) as exc:
                    logger.debug("sandbox probe %s failed: %s", cfg, exc)
                    continue
                if res.ok and res.stdout == "ok True\n":
                    _PROBED = cfg
                    logger.info("sandbox isolation: %s (%s, flags=%#x)", mode, interp, flags)
                    return cfg
                logger.debug("sandbox probe %s: rc=%s stderr=%r", cfg, res.exit_code, res.stderr[-500:])
        _PROBE_FAILED = True
        logger.error("sandbox: no interpreter can be started as the sandbox user")
        return None


def sandbox_isolation() -> str:
    """Network isolation this machine allows: "netns", "socket-shim", or "unavailable". Cached."""
    cfg = _probe()
    return cfg.mode if cfg is not None else "unavailable"


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
    """Run ``code`` with ``python -I -S`` under the containment described in the module docstring.

    Never raises for anything the code does.  If the child cannot even be started (e.g. the
    kernel refuses a fork), the result has ``ok=False``, ``exit_code=None`` and
    ``killed_reason="spawn"``.  Raises :class:`SandboxUnavailable` if the probe found no
    interpreter that can be started as the sandbox user at all.
    """
    cfg = _probe()
    if cfg is None:
        raise SandboxUnavailable("no Python interpreter can be started as the sandbox user")
    start = time.monotonic()
    try:
        return _execute(
            cfg,
            code=code,
            stdin=stdin,
            wall_s=wall_s,
            cpu_s=cpu_s,
            memory_mb=memory_mb,
            file_mb=file_mb,
            max_procs=max_procs,
            output_limit=output_limit,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("sandbox: could not start the child: %s", exc)
        return SandboxResult(
            ok=False,
            exit_code=None,
            stdout="",
            stderr=f"sandbox: could not start the child: {exc}",
            timed_out=False,
            killed_reason="spawn",
            duration_s=time.monotonic() - start,
            isolation=cfg.mode,
        )


def _limits(*, cpu_s: int, memory_mb: int, file_mb: int, nproc: int) -> _Limits:
    cpu = max(1, int(cpu_s))
    return [
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory_mb * MIB, memory_mb * MIB)),
        (resource.RLIMIT_FSIZE, (file_mb * MIB, file_mb * MIB)),
        (resource.RLIMIT_NOFILE, (256, 256)),
        (resource.RLIMIT_NPROC, (nproc, nproc)),
    ]


def _rmtree(path: str) -> None:
    def onerror(func: Callable[..., object], p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)

    shutil.rmtree(path, onerror=onerror)
    if os.path.exists(path):
        logger.warning("sandbox: could not remove %s", path)


def _execute(
    cfg: _Config,
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
    uid = _pick_uid()
    workdir = tempfile.mkdtemp(prefix="swarm-sandbox-")
    try:
        script = os.path.join(workdir, "main.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(code)
        if uid is not None:
            os.chown(script, uid, uid)
            os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
        argv = [cfg.interpreter, "-I", "-S", "-c", _BOOTSTRAP, script]
        argv += [
            "pidns" if cfg.pidns else "subreaper",
            "1" if cfg.mode == "socket-shim" else "0",
            "1" if uid is not None else "0",
        ]
        nproc = _count_tasks(uid if uid is not None else os.getuid()) + max_procs + _EXTRA_PROCS
        limits = _limits(cpu_s=cpu_s, memory_mb=memory_mb, file_mb=file_mb, nproc=nproc)
        preexec = _make_preexec(flags=cfg.flags, uid=uid, limits=limits)
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write(stdin.encode("utf-8", "replace"))
            stdin_file.flush()
            stdin_file.seek(0)
            start = time.monotonic()
            proc = subprocess.Popen(
                argv,
                stdin=stdin_file,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=env,
                close_fds=True,
                start_new_session=True,
                preexec_fn=preexec,
            )
            return _supervise(
                proc, cfg=cfg, uid=uid, start=start, wall_s=wall_s, cpu_s=cpu_s, output_limit=output_limit
            )
    finally:
        _rmtree(workdir)


def _supervise(
    proc: subprocess.Popen[bytes],
    *,
    cfg: _Config,
    uid: int | None,
    start: float,
    wall_s: float,
    cpu_s: int,
    output_limit: int,
) -> SandboxResult:
    sid = proc.pid  # session leader: sid == pgid == pid
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    truncated = False
    timed_out = False
    status: int | None = None
    cpu_used = 0.0
    sel = selectors.DefaultSelector()
    pidfd: int | None = None
    try:
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ)

        def reap(block: bool) -> None:
            nonlocal status, cpu_used
            if status is not None:
                return
            pid, st, ru = os.wait4(proc.pid, 0 if block else os.WNOHANG)
            if pid:
                status = st
                cpu_used = ru.ru_utime + ru.ru_stime
                proc.returncode = os.waitstatus_to_exitcode(st)

        deadline = start + wall_s
        kill_from: float | None = None  # wall limit hit at this time
        drain_until: float | None = None
        open_fds = set(bufs)
        while True:
            reap(block=False)
            now = time.monotonic()
            if status is None and kill_from is None and now >= deadline:
                timed_out = True
                kill_from = now
            if status is None and kill_from is not None:
                if now - kill_from < _GRACE_S:
                    # Kill everything of the run but W; W reaps it all and exits by itself.
                    _kill_members(sid=sid, uid=uid, exclude=proc.pid)
                else:
                    _killpg(sid)
                    if now - kill_from > _GRACE_S + _REAP_S:
                        break  # unkillable (D state?): give up, the finally block logs it
            if status is not None:
                if drain_until is None:
                    drain_until = now + _DRAIN_S
                if not open_fds or now >= drain_until:
                    break
            if status is None and kill_from is None:
                wait = deadline - now if pidfd is not None else min(deadline - now, 0.02)
            elif status is None:
                wait = 0.02
            else:
                wait = (drain_until or now) - now
            wait = max(0.0, wait)
            for key, _ in sel.select(timeout=wait):
                fd = key.fd
                if fd == pidfd:
                    sel.unregister(fd)
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    open_fds.discard(fd)
                    continue
                buf = bufs[fd]
                room = output_limit - len(buf)
                if room > 0:
                    buf += chunk[:room]
                if len(chunk) > room:
                    truncated = True
    finally:
        _killpg(sid)
        if status is None:
            end = time.monotonic() + _REAP_S
            while status is None and time.monotonic() < end:
                try:
                    reap(block=False)
                except ChildProcessError:
                    break
                if status is None:
                    time.sleep(0.005)
            if status is None:
                logger.error("sandbox: child %d did not die after SIGKILL", proc.pid)
        survivors = _sweep(sid=sid, uid=uid)
        if survivors:
            logger.error("sandbox: processes survived cleanup: %s", survivors)
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()

    duration = time.monotonic() - start
    out, err = bytes(bufs[out_fd]), bytes(bufs[err_fd])
    exit_code = proc.returncode
    reason = _killed_reason(exit_code, timed_out=timed_out, cpu=cpu_used, cpu_s=cpu_s, err=err)
    return SandboxResult(
        ok=exit_code == 0 and not timed_out and reason is None,
        exit_code=exit_code,
        stdout=out.decode("utf-8", "replace")[:output_limit],
        stderr=err.decode("utf-8", "replace")[:output_limit],
        timed_out=timed_out,
        killed_reason=reason,
        duration_s=duration,
        isolation=cfg.mode,
        truncated=truncated,
    )


def _killed_reason(code: int | None, *, timed_out: bool, cpu: float, cpu_s: int, err: bytes) -> str | None:
    """Best-effort reason the run did not finish normally (``cpu`` = CPU seconds used)."""
    if timed_out:
        return "wall"
    if code is None or code == 0:
        return None
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= cpu_s - 0.05):
        return "cpu"
    if code == -signal.SIGXFSZ:
        return "file"
    if code < 0:
        return "signal"
    if b"MemoryError" in err:
        return "memory"
    if b"File too large" in err:
        return "file"
    if b"BlockingIOError: [Errno 11]" in err:
        return "procs"
    return None
