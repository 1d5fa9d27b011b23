"""Tests for routing.sandbox: every behaviour through real bwrap runs (no mocks of the sandbox itself).

The escape attempts live in test_sandbox_escape.py; this file covers results, limits, the probe and
failing closed.  Tests that need root (the throw-away uid) say so and are skipped otherwise.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from inference.backends.base import Generation
from routing import sandbox
from routing.heads.base import HeadContext
from routing.heads.code import CodeHead, public_ballots
from routing.sandbox import SANDBOX_UID_RANGE, SandboxResult, SandboxUnavailable, run_python
from routing.views import VoteView
from tests.routing.test_sandbox_escape import assert_no_leftovers

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the throw-away uid is only used when the parent is root")


def run(code: str, **kw: object) -> SandboxResult:
    res = run_python(code=textwrap.dedent(code), **kw)  # type: ignore[arg-type]
    assert_no_leftovers()
    return res


# --------------------------------------------------------------------------- results
def test_ordinary_code() -> None:
    res = run("print(sum(range(10)))")
    assert res.ok and res.exit_code == 0 and res.isolation == "bwrap"
    assert res.stdout == "45\n" and res.stderr == ""
    assert not res.timed_out and res.killed_reason is None and not res.truncated
    assert res.duration_s < 5


def test_failing_assert_shows_the_script_traceback() -> None:
    res = run("x = 1\nassert x == 2, 'nope'\n")
    assert not res.ok and res.exit_code == 1 and res.killed_reason is None
    assert 'File "/sandbox/main.py", line 2' in res.stderr
    assert res.stderr.rstrip().endswith("AssertionError: nope")


def test_exit_code_and_stdin() -> None:
    res = run("import sys\ndata = sys.stdin.read()\nprint(data.upper())\nsys.exit(3)\n", stdin="hello")
    assert res.stdout == "HELLO\n"
    assert res.exit_code == 3 and not res.ok and res.killed_reason is None


def test_syntax_error() -> None:
    res = run("def f(:\n")
    assert not res.ok and res.exit_code == 1 and "SyntaxError" in res.stderr


def test_isolated_interpreter_with_the_stdlib_only() -> None:
    code = """
    import sys, json, sqlite3, ssl, decimal, ctypes, hashlib  # the stdlib's C extensions load
    print(sys.flags.isolated, sys.flags.no_site, 'site' in sys.modules)
    try:
        import pip
        print('pip importable')
    except ImportError:
        print('no site-packages')
    """
    res = run(code)
    assert res.ok, res.stderr
    assert res.stdout == "1 1 False\nno site-packages\n"


def test_concurrent_runs_do_not_interfere() -> None:
    code = "import os, sys, time\nopen('/tmp/mine', 'w').write(sys.stdin.read())\ntime.sleep(0.3)\n"
    code += "print(os.getuid(), open('/tmp/mine').read(), os.listdir('/tmp'))"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: run_python(code=code, stdin=str(i)), range(4)))
    assert_no_leftovers()
    assert all(r.ok for r in results), [r.stderr for r in results]
    assert [r.stdout.split(" ", 1)[1] for r in results] == [f"{i} ['mine']\n" for i in range(4)]
    if IS_ROOT:
        assert len({r.stdout.split()[0] for r in results}) == 4  # one throw-away uid per run


def test_spawn_failure_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(sandbox.subprocess, "Popen", boom)
    res = run_python(code="print(1)")
    assert not res.ok and res.exit_code is None and res.killed_reason == "spawn"
    assert "could not start" in res.stderr


def test_output_past_the_cap_kills_the_run() -> None:
    res = run("import sys, time\nprint('x' * 5000, flush=True)\ntime.sleep(30)", output_limit=1000, wall_s=20)
    assert res.stdout == "x" * 1000 and res.truncated
    assert not res.ok and res.killed_reason == "output" and res.duration_s < 5


def test_output_within_the_cap_is_whole() -> None:
    res = run("import sys\nprint('o' * 900)\nprint('e' * 900, file=sys.stderr)", output_limit=1000)
    assert res.ok and not res.truncated
    assert res.stdout == "o" * 900 + "\n" and res.stderr == "e" * 900 + "\n"


# --------------------------------------------------------------------------- who and where the code runs
@needs_root
def test_runs_as_a_throwaway_user_without_privileges() -> None:
    code = """
    import os
    status = dict(line.split(':', 1) for line in open('/proc/self/status'))
    print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
    print(status['NoNewPrivs'].strip(), status['CapEff'].strip(), status['CapBnd'].strip())
    """
    res = run(code)
    assert res.ok, res.stderr
    ids, privs = res.stdout.splitlines()
    uid, euid, gid, groups = ids.split(" ", 3)
    assert SANDBOX_UID_RANGE[0] <= int(uid) < SANDBOX_UID_RANGE[1]
    assert uid == euid == gid and groups == "[]"
    assert privs == "1 0000000000000000 0000000000000000"


def test_its_own_namespaces() -> None:
    code = """
    import os, socket
    print(os.getpid(), socket.gethostname(), socket.if_nameindex())
    print(sorted(os.listdir('/')), os.getcwd())
    """
    res = run(code)
    assert res.ok, res.stderr
    assert res.stdout.splitlines() == [
        "1 sandbox [(1, 'lo')]",
        "['dev', 'lib', 'lib64', 'proc', 'root', 'sandbox', 'tmp'] /tmp",
    ]


def test_nested_user_namespaces_are_refused() -> None:
    res = run("import ctypes\nprint(ctypes.CDLL(None, use_errno=True).unshare(0x10000000), ctypes.get_errno())")
    assert res.ok and res.stdout.split()[0] == "-1"


def test_the_host_mount_table_does_not_change() -> None:
    with open("/proc/self/mountinfo") as fh:
        before = fh.read()
    assert run("print(1)").ok
    with open("/proc/self/mountinfo") as fh:
        assert fh.read() == before


@needs_root
def test_the_staging_directory_is_shared_and_checked_before_use() -> None:
    binds = sandbox._probe().binds
    stage = sandbox._make_stage(binds)
    assert sandbox._make_stage(binds) == stage and sorted(os.listdir(stage)) == sorted(map(str, range(len(binds))))
    os.chmod(stage, 0o777)  # anyone could swap the mount points now: not used
    try:
        with pytest.raises(SandboxUnavailable, match="staging directory"):
            sandbox._make_stage(binds)
    finally:
        os.chmod(stage, 0o755)
    assert sandbox._make_stage(binds) == stage


# --------------------------------------------------------------------------- limits
@pytest.mark.parametrize("code", ["while True: pass", "import time\ntime.sleep(100)"], ids=["busy", "sleep"])
def test_wall_clock_kill(code: str) -> None:
    t0 = time.monotonic()
    res = run(code, wall_s=2, cpu_s=30)
    assert res.timed_out and not res.ok and res.killed_reason == "wall"
    assert time.monotonic() - t0 < 4.0 and 1.9 <= res.duration_s < 4.0


def test_cpu_limit() -> None:
    res = run("while True: pass", wall_s=10, cpu_s=1)
    assert not res.ok and not res.timed_out and res.killed_reason == "cpu"
    assert res.duration_s < 8  # one CPU second, on a machine that may be busy


def test_process_limit() -> None:
    res = run("import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(30)\n", max_procs=8, wall_s=10)
    assert not res.ok and res.killed_reason == "procs" and res.duration_s < 5


ESCAPE = """
import os, time
for _ in range(10):
    try:
        if os.fork() == 0:
            os.setsid()  # leave the process group
            if os.fork() == 0:
                time.sleep(1000)
            os._exit(0)
    except OSError:
        pass
print('spawned', flush=True)
time.sleep(1000)
"""


def test_setsid_escapees_are_killed() -> None:
    t0 = time.monotonic()
    res = run(ESCAPE, wall_s=2)
    assert time.monotonic() - t0 < 4.0
    assert res.timed_out and res.stdout == "spawned\n"


def test_background_child_killed_when_main_exits() -> None:
    t0 = time.monotonic()
    res = run("import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "print('bye')", wall_s=5)  # fmt: skip
    assert res.ok and res.stdout == "bye\n"
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize(
    "code",
    ["x = bytearray(10**10)", "chunks = []\nwhile True:\n    chunks.append(bytearray(100 * 1024 * 1024))"],
    ids=["one-shot", "chunks"],
)
def test_memory_bomb_refused(code: str) -> None:
    res = run(code, wall_s=5, memory_mb=256)
    assert not res.ok and not res.timed_out
    assert "MemoryError" in res.stderr and res.killed_reason == "memory"
    assert res.duration_s < 5


@pytest.mark.parametrize("path", ["big", "/dev/shm/big"])
def test_file_size_limit(path: str) -> None:
    res = run(f"open({path!r}, 'wb').write(b'x' * (3 * 1024 * 1024))", file_mb=1)
    assert not res.ok and "File too large" in res.stderr and res.killed_reason == "file"


def test_tmp_size_limit() -> None:
    code = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'x' * 1024 * 1024)\n"
    res = run(code, file_mb=2)  # many files, each under the per-file limit: the tmpfs fills up
    assert not res.ok and "No space left on device" in res.stderr


# --------------------------------------------------------------------------- probe and failing closed
def test_status_is_cached_and_ok_here() -> None:
    assert sandbox.sandbox_status() == {"ok": True, "isolation": "bwrap", "reason": None}
    t0 = time.monotonic()
    assert sandbox.sandbox_isolation() == "bwrap"
    assert time.monotonic() - t0 < 0.01  # cached, no second probe


@pytest.fixture
def unprobed(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Forget the cached probe for one test (the real plan comes back afterwards)."""
    monkeypatch.setattr(sandbox, "_PLAN", None)
    monkeypatch.setattr(sandbox, "_FAILURE", None)
    return monkeypatch


@pytest.mark.parametrize(
    ("bwrap", "reason"),
    [("/nonexistent/bwrap", "bwrap not found"), ("/bin/false", "bwrap probe failed")],
    ids=["missing", "broken"],
)
def test_without_a_working_bwrap_nothing_runs(unprobed: pytest.MonkeyPatch, bwrap: str, reason: str) -> None:
    unprobed.setenv("SWARM_SANDBOX_BWRAP", bwrap)
    status = sandbox.sandbox_status()
    assert status["ok"] is False and status["isolation"] == "unavailable"
    assert status["reason"].startswith(reason)
    with pytest.raises(SandboxUnavailable, match=reason):
        run_python(code="open('/tmp/ran-unsandboxed', 'w')")
    assert not os.path.exists("/tmp/ran-unsandboxed")


def test_a_failed_probe_is_retried_later(unprobed: pytest.MonkeyPatch) -> None:
    unprobed.setenv("SWARM_SANDBOX_BWRAP", "/nonexistent/bwrap")
    assert sandbox.sandbox_status()["ok"] is False
    unprobed.delenv("SWARM_SANDBOX_BWRAP")
    assert sandbox.sandbox_status()["ok"] is False  # cached for a while ...
    unprobed.setattr(sandbox, "_RETRY_PROBE_S", 0.0)
    assert sandbox.sandbox_status()["ok"] is True  # ... then probed again


# --------------------------------------------------------------------------- the code head's use of it
def fake_model(text: str, calls: list[str] | None = None):
    def generate(messages, **kwargs):
        if calls is not None:
            calls.append(messages[-1]["content"])
        return Generation(text=text, prompt_tokens=1, completion_tokens=1, finish_reason="stop", latency_ms=1.0)

    return generate


LEAKY_PROMPT = (
    "Write a python function add(a, b) that returns the sum of a and b.\n"
    "assert add(2, 3) == 5\nassert add(1, 1) == 3\nassert False, open('/etc/passwd').read()\n"
)
ADD = "```python\ndef add(a, b):\n    return a + b\n```"


def test_code_ballot_summarises_the_run_and_keeps_raw_output_for_staff() -> None:
    ballot = CodeHead().answer(LEAKY_PROMPT, HeadContext(generate=fake_model(ADD))).as_dict()
    run = ballot["evidence"]["sandbox"]
    assert ballot["evidence"]["passed"] is False and ballot["confidence"] == 0.05
    assert len(ballot["evidence"]["tests"]) == 5  # the three asserts, and the two `add(..) == n` examples again
    assert (run["tests_passed"], run["tests_failed"], run["error"]) == (2, 3, "AssertionError")
    assert "FileNotFoundError" in run["output"]["stderr"]  # the staff view: the run's own words
    public = json.dumps(public_ballots([ballot]))
    assert "output" not in json.loads(public)[0]["evidence"]["sandbox"]
    assert "passwd" not in public.replace(ballot["evidence"]["tests"][2], "")  # only the test's own text names it
    first = Path("/etc/passwd").read_text().splitlines()[0]
    assert first not in json.dumps(ballot)


@pytest.mark.parametrize(
    ("written", "passed", "error"),
    [
        (ADD, True, None),
        ("```python\ndef add(a, b):\n    return a + b\n\ndef add_2(a, b", True, None),
        ("def add(a, b):\n    return a - b", False, "AssertionError"),
        ("import os\nos._exit(0)\ndef add(a, b):\n    return 0", False, "tests did not report"),
        ("def add(a, b):\n    return a + b\nraise KeyError('boom')", False, "KeyError"),
    ],
    ids=["passes", "cut-off-reply", "wrong", "exits-before-the-tests", "raises-on-import"],
)
def test_code_ballot_passes_only_when_every_test_ran_and_passed(written: str, passed: bool, error: str | None) -> None:
    prompt = "Write a python function add(a, b).\nassert add(2, 3) == 5\nassert add(0, 0) == 0\n"
    ballot = CodeHead().answer(prompt, HeadContext(generate=fake_model(written)))
    assert ballot.evidence["passed"] is passed and ballot.evidence["sandbox"]["error"] == error
    assert ballot.confidence == (0.9 if passed else 0.05)


def test_code_head_is_off_without_a_sandbox(unprobed: pytest.MonkeyPatch) -> None:
    unprobed.setenv("SWARM_SANDBOX_BWRAP", "/nonexistent/bwrap")
    calls: list[str] = []
    ballot = CodeHead().answer(LEAKY_PROMPT, HeadContext(generate=fake_model(ADD, calls)))
    assert ballot.confidence == 0.0 and ballot.answer == ""
    assert ballot.evidence == {"abstained": "sandbox unavailable: bwrap not found (install the bubblewrap package)"}
    assert calls == []  # not even the model was asked


@pytest.mark.parametrize("staff", [True, False], ids=["staff", "api-key"])
def test_vote_shows_raw_sandbox_output_to_staff_only(monkeypatch: pytest.MonkeyPatch, staff: bool) -> None:
    ballot = CodeHead().answer(LEAKY_PROMPT, HeadContext(generate=fake_model(ADD))).as_dict()
    result = {"answer": "", "route": "unsure", "ballots": [ballot], "scores": {"code": 0.05}, "winner_head": "code"}
    monkeypatch.setattr(VoteView, "ask", lambda self, request: result)
    caller = SimpleNamespace(is_active=True, is_staff=staff, is_authenticated=True)
    body = VoteView().post(SimpleNamespace(user=caller)).data
    for shown in (body["ballots"][0], body["winner"]):
        run = shown["evidence"]["sandbox"]
        assert run["error"] == "AssertionError" and run["tests_failed"] == 3
        assert ("output" in run) is staff
    assert ("FileNotFoundError: [Errno 2]" in json.dumps(body)) is staff
