"""The API's JSON parser: the body's size and nesting depth are checked before it is decoded.

`json.loads` recurses once per nesting level, so a body of 100,000 brackets ends in a RecursionError
(a 500) and a very large body costs memory before any validation runs. This parser reads at most
`SWARM_MAX_BODY_BYTES` (413 above), then scans the brackets outside strings without recursion and
refuses a body nested deeper than `SWARM_MAX_JSON_DEPTH` (400) before the JSON decoder sees it.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

from swarm_site.errors import PayloadTooLarge

QUOTE = '"'
# Outside strings: a run of opening brackets, a run of closing ones, or the quote that opens a string.
_OUTSIDE = re.compile(r"[\[{]+|[\]}]+|\"")
# The rest of a string after its opening quote, up to and including the closing quote. Anchored
# (`match` at a position) and unambiguous, so it runs in linear time even when it fails.
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def json_depth_exceeds(text: str, limit: int) -> bool:
    """True when `text` opens more than `limit` arrays/objects inside one another (strings ignored).

    A scan of the bracket runs, without recursion; it does not check that the JSON is well formed
    (the decoder does that afterwards), only that decoding it cannot recurse deeper than `limit`.
    """
    depth = 0
    pos = 0
    while (match := _OUTSIDE.search(text, pos)) is not None:
        token = match.group()
        pos = match.end()
        if token == QUOTE:
            rest = _STRING_REST.match(text, pos)
            if rest is None:  # an unterminated string: the decoder will say so
                return False
            pos = rest.end()
        elif token[0] in "[{":
            depth += len(token)
            if depth > limit:
                return True
        else:
            depth = max(0, depth - len(token))
    return False


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser with a body size limit (413) and a nesting depth limit (400), both checked first."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        limit = settings.SWARM_MAX_BODY_BYTES
        request = parser_context.get("request")
        declared = _content_length(request.META if request is not None else {})
        if declared is not None and declared > limit:
            raise PayloadTooLarge(f"the request body has {declared} bytes; the limit is {limit}")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"the request body has more than {limit} bytes; the limit is {limit}")
        encoding = get_encoding(parser_context)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - the body is not valid {encoding}: {exc}") from None
        depth = settings.SWARM_MAX_JSON_DEPTH
        if json_depth_exceeds(text, depth):
            raise exceptions.ParseError(f"JSON parse error - the body is nested more than {depth} levels deep; "
                                        f"the limit is {depth}")  # fmt: skip
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


def _content_length(meta: dict) -> int | None:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0) or None
    except (TypeError, ValueError):
        return None
