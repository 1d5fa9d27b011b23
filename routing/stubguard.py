"""The stub guard: template or evasive answers never win a vote."""

from __future__ import annotations

import re

STUB_MARKERS: tuple[str, ...] = (
    "TODO",
    "FIXME",
    "template",
    "custom_function",
    "your code here",
    "your_code_here",
    "implement me",
    "NotImplementedError",
    "I don't know",
    "I do not know",
    "as an AI",
    "as a language model",
    "lorem ipsum",
    "<insert",
)
_PATTERN = re.compile("|".join(rf"\b{re.escape(m)}" if m[0].isalnum() else re.escape(m) for m in STUB_MARKERS), re.I)


def stub_marker(text: str) -> str | None:
    """The first stub marker in `text`, or None."""
    match = _PATTERN.search(text or "")
    return match.group(0) if match else None
