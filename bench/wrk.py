"""wrk (the HTTP load generator, Debian package `wrk`) from Python: the Lua script of one case, the run,
and its output read back into numbers. Used by bench/hotpath.py.

Each script ends with a `done` hook that prints one line, `HOTPATH_WRK {json}`: requests, duration,
wrk's error counts (connect, read, write, timeout, and `status`: responses with a status of 400 or
more) and the latency percentiles 50/75/90/95/99 in microseconds, read from wrk's own histogram. With
`expect`, a `response` hook also checks every response's body against Lua patterns (a cache hit that
says `"cached":true`, a head's answer that says `"skill_type":"math"`) and counts those that miss.
`parse_wrk` reads that line; without one (a script of someone else's) it falls back to wrk's text
summary (`--latency`), which has no p95.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "HOTPATH_WRK "
PERCENTILES = (50, 75, 90, 95, 99)
INSTALL_HINT = "install the Debian package `wrk` (apt-get install wrk; `make hotpath` does it when run as root)"

_STATS_LUA = r"""
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local checked, missed = 0, 0
  for _, t in ipairs(threads) do
    checked = checked + (t:get("checked") or 0)
    missed = missed + (t:get("missed") or 0)
  end
  local pct = {}
  for _, q in ipairs({%(percentiles)s}) do
    pct[#pct + 1] = string.format('"%%d":%%d', q, latency:percentile(q))
  end
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"min":%%d,"max":%%d,"mean":%%.1f,"stdev":%%.1f,"percentiles":{%%s}},' ..
    '"checked":%%d,"missed":%%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(pct, ","), checked, missed))
end
"""


class WrkMissing(RuntimeError):
    """No `wrk` on PATH."""


def wrk_binary() -> str:
    """The path of `wrk`, or WrkMissing naming what to install."""
    path = shutil.which("wrk")
    if not path:
        raise WrkMissing(f"wrk is not installed: {INSTALL_HINT}")
    return path


def lua_string(text: str) -> str:
    """`text` as a Lua long-bracket literal, whatever it contains."""
    level = 0
    while f"]{'=' * level}]" in text + "]":  # a closing `]` of the text would end a level-0 literal early
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def lua_plain(text: str) -> str:
    """A Lua pattern that matches `text` literally (every character but letters, digits and _ escaped)."""
    return re.sub(r"([^A-Za-z0-9_])", r"%\1", text)


def json_field(name: str, value: str) -> str:
    """A Lua pattern for `"name": value` in a JSON body (`value` as JSON text: `true`, `"cache"`, `1`),
    whatever the whitespace after the colon; a number must end there (1 is not 12)."""
    end = "[^%d.]" if re.fullmatch(r"-?\d+(\.\d+)?", value) else ""
    return f"{lua_plain(json.dumps(name))}:%s*{lua_plain(value)}{end}"


def lua_script(
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    vary: str | None = None,
    expect: tuple[str, ...] = (),
) -> str:
    """The Lua script of one case. `body`: the same body on every request; `vary`: a body template with
    one `%d`, filled per request with a number no other request of the run uses (`init` takes a base
    number as the script's first argument, each thread counts from base + thread * 100,000).
    `expect`: Lua patterns every response's body must match (else it counts as `missed`)."""
    lines = [f"wrk.method = {lua_string(method)}"]
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}")
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    if vary is not None:
        lines += [
            "local base, counter = 0, 0",
            "function init(args)",
            "  base = (tonumber(args[1]) or 0) + tid * 100000",
            "end",
            "function request()",
            "  counter = counter + 1",
            f"  return wrk.format(nil, nil, nil, string.format({lua_string(vary)}, base + counter))",
            "end",
        ]
    if expect:
        patterns = ", ".join(lua_string(p) for p in expect)
        lines += [
            f"local expected = {{{patterns}}}",
            "checked, missed = 0, 0",
            "function response(status, headers, body)",
            "  checked = checked + 1",
            "  for _, pattern in ipairs(expected) do",
            "    if not string.find(body, pattern) then",
            "      missed = missed + 1",
            "      return",
            "    end",
            "  end",
            "end",
        ]
    stats = _STATS_LUA % {"percentiles": ", ".join(str(p) for p in PERCENTILES), "marker": MARKER}
    return "\n".join(lines) + "\n" + stats


# --- reading the output --------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return round(float(value) * _UNITS_MS[unit], 3)


def _empty() -> dict[str, Any]:
    return {"requests": 0, "duration_s": None, "rps": None, "latency_ms": {}, "non_2xx": None, "errors": None,
            "socket_errors": {}, "checked": None, "missed": None, "source": None}  # fmt: skip


def parse_wrk(output: str) -> dict[str, Any]:
    """wrk's stdout -> requests, duration_s, rps, latency_ms (p50 .. p99, mean, max), non_2xx (responses
    with a status >= 400: wrk's count), errors (socket errors: connect + read + write + timeout) and
    their breakdown, checked / missed (responses checked by the script's patterns, and those that did
    not match). From the `HOTPATH_WRK` line when there is one, else from the text summary."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            return _from_marker(json.loads(line[len(MARKER) :]))
    return _from_text(output)


def _from_marker(raw: dict[str, Any]) -> dict[str, Any]:
    out = _empty()
    duration_s = raw["duration_us"] / 1e6
    errors = raw["errors"]
    lat = raw["latency_us"]
    latency = {f"p{q}_ms": round(v / 1000, 3) for q, v in sorted(lat["percentiles"].items(), key=lambda i: int(i[0]))}
    latency.update(mean_ms=round(lat["mean"] / 1000, 3), max_ms=round(lat["max"] / 1000, 3),
                   min_ms=round(lat["min"] / 1000, 3), stdev_ms=round(lat["stdev"] / 1000, 3))  # fmt: skip
    socket = {k: errors[k] for k in ("connect", "read", "write", "timeout")}
    out.update(requests=raw["requests"], duration_s=round(duration_s, 3),
               rps=round(raw["requests"] / duration_s, 1) if duration_s else None, latency_ms=latency,
               non_2xx=errors["status"], errors=sum(socket.values()), socket_errors=socket,
               checked=raw.get("checked"), missed=raw.get("missed"), bytes=raw.get("bytes"),
               source="done hook")  # fmt: skip
    return out


def _from_text(output: str) -> dict[str, Any]:
    out = _empty()
    out["source"] = "text summary"
    if m := re.search(r"(\d+) requests in " + _TIME, output):
        out["requests"] = int(m.group(1))
        out["duration_s"] = round(_ms(m.group(2), m.group(3)) / 1000, 3)
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        out["rps"] = float(m.group(1))
    latency: dict[str, float] = {}
    if m := re.search(r"Latency\s+" + _TIME + r"\s+" + _TIME + r"\s+" + _TIME, output):
        latency.update(mean_ms=_ms(m.group(1), m.group(2)), stdev_ms=_ms(m.group(3), m.group(4)),
                       max_ms=_ms(m.group(5), m.group(6)))  # fmt: skip
    if "Latency Distribution" in output:
        dist = output.split("Latency Distribution", 1)[1]
        for q, value, unit in re.findall(r"^\s+(\d+(?:\.\d+)?)%\s+" + _TIME, dist, re.M):
            latency[f"p{float(q):g}_ms"] = _ms(value, unit)
    out["latency_ms"] = dict(sorted(latency.items()))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    out["non_2xx"] = int(m.group(1)) if m else 0
    socket = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        socket = dict(zip(socket, (int(v) for v in m.groups()), strict=True))
    out["socket_errors"] = socket
    out["errors"] = sum(socket.values())
    return out


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkRun:
    """One wrk invocation: `url` (path included), the script's text, its arguments."""

    url: str
    script: str
    connections: int
    duration_s: int
    threads: int = 1
    timeout_s: int = 10
    script_args: tuple[str, ...] = ()

    @property
    def wrk_threads(self) -> int:
        """wrk wants at least one connection per thread."""
        return max(1, min(self.threads, self.connections))

    def argv(self, binary: str, script_path: Path) -> list[str]:
        argv = [binary, "-t", str(self.wrk_threads), "-c", str(self.connections), "-d", f"{self.duration_s}s",
                "--timeout", f"{self.timeout_s}s", "--latency", "-s", str(script_path), self.url]  # fmt: skip
        return [*argv, "--", *self.script_args] if self.script_args else argv


def run_wrk(run: WrkRun, script_path: Path) -> dict[str, Any]:
    """Write the script to `script_path`, run wrk, parse its output; the command and wrk's text ride along."""
    binary = wrk_binary()
    script_path.write_text(run.script)
    argv = run.argv(binary, script_path)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=run.duration_s + run.timeout_s + 60)
    if proc.returncode != 0 or MARKER not in proc.stdout:
        raise RuntimeError(f"wrk exited {proc.returncode}: {(proc.stderr or proc.stdout)[-500:]}")
    result = parse_wrk(proc.stdout)
    result.update(connections=run.connections, threads=run.wrk_threads, command=" ".join(argv))
    result["wrk_text"] = [line for line in proc.stdout.splitlines() if not line.startswith(MARKER)]
    return result
