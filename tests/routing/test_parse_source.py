"""The heads' parses go through one lock: on CPython 3.11, two threads building AST objects at once can
fail with "SystemError: AST constructor recursion depth mismatch" when a finalizer run by the garbage
collector in the middle of one parse lets another thread in (seen in the math head's concurrency test)."""

from __future__ import annotations

import gc
import threading
import time

from routing.heads.base import parse_source

SOURCE = "(" * 30 + "x+1" + ")" * 30 + "+" + "+".join(f"f(g(h({i})))" for i in range(50))


class _Garbage:
    """A cycle whose finalizer gives the GIL away, as a closed generator or a socket's may."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        time.sleep(0)


def test_parses_in_threads_with_finalizers_running_do_not_fail():
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(300):
            [_Garbage() for _ in range(20)]
            try:
                parse_source(SOURCE, mode="eval")
            except SystemError as exc:  # what plain ast.parse raises here (1 to 2 times in 2,400 parses)
                errors.append(exc)

    thresholds = gc.get_threshold()
    gc.set_threshold(50, 1, 1)
    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.set_threshold(*thresholds)
        gc.collect()
    assert errors == []
