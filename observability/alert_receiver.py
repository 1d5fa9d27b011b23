"""A tiny Alertmanager webhook receiver on loopback (stdlib only).

``python -m observability.alert_receiver --port 9099 [--log var/alerts.jsonl]`` prints (and
appends to the log) one JSON line per notification: the path it came to (``/alerts/warning``,
``/alerts/critical``), then Alertmanager's payload. The alert drill uses :class:`AlertReceiver`
in-process to see what Alertmanager really sent.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Notification:
    path: str
    payload: dict[str, Any]
    received_at: float = field(default_factory=time.time)

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.payload.get("alerts", []))


class AlertReceiver:
    """Records every POST; thread-safe; serve() in a background thread, stop() to end."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None, echo: bool = False
    ) -> None:
        self._echo = echo
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._notifications: list[Notification] = []
        self._log_path = log_path
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body or b"{}")
                except json.JSONDecodeError:
                    self.send_error(400, "body is not JSON")
                    return
                receiver._record(Notification(self.path, payload if isinstance(payload, dict) else {}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _record(self, note: Notification) -> None:
        line = json.dumps({"path": note.path, "received_at": note.received_at, **note.payload}, sort_keys=True)
        with self._cond:
            self._notifications.append(note)
            if self._log_path is not None:
                with self._log_path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            self._cond.notify_all()
        if self._echo:
            print(line, flush=True)

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def wait_for(self, predicate: Callable[[Notification], bool], timeout_s: float) -> Notification | None:
        """The first recorded notification (old or new) for which predicate(n) is true, or None."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for note in self._notifications:
                    if predicate(note):
                        return note
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(timeout=min(left, 0.5))

    def start(self) -> AlertReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Alertmanager webhook receiver on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--log", type=Path, default=None, help="append JSON lines here too")
    args = parser.parse_args(argv)
    receiver = AlertReceiver(args.host, args.port, args.log, echo=True).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"alert receiver on {receiver.url}", file=sys.stderr, flush=True)
    stop.wait()
    receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
