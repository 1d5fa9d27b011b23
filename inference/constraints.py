"""Constrained decoding for the local model: JSON mode, JSON schemas and tool calls as llama.cpp grammars.

The OpenAI request's `response_format` and `tools` become a `Constraint`: a GBNF grammar that the
sampler must follow (llama.cpp masks every token that would leave it), the messages as the model
reads them (tool definitions and earlier calls and results written in the Hermes/Qwen form that chat
models are trained on: `<tools>`, `<tool_call>`, `<tool_response>`), and the parser that turns the
generated text back into OpenAI's `content` or `tool_calls`.

- `json_object`: any JSON object; `json_schema`: that schema (llama.cpp's schema-to-grammar
  converter; a schema it cannot convert is refused up front with a 400 on `response_format`).
  The answer parses, and with a schema it validates, unless `max_tokens` cut it (finish_reason
  `length`, as OpenAI does).
- tools: `required` or a named function force one call, `auto` lets the model's first token choose
  between a call and a plain answer, `none` leaves the tools out. One call per turn.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, Any]]

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
_TOOLS_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, "arguments": '
    "<args-json-object>}}\n</tool_call>"
)
_JSON_PROMPT = "Reply with one short JSON object only."
_SCHEMA_PROMPT = "Reply with one JSON object only, following this JSON schema:\n{schema}"


class ConstraintError(ValueError):
    """The request's format cannot be enforced; `param` names the request field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Constraint:
    """How one request is generated and read back: grammar (None: free text), messages, parser."""

    messages: Messages
    grammar: str | None = None
    kind: str = "text"  # text | json | tools
    schema: dict[str, Any] | None = None  # json_schema: what the answer must validate against
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # tools: name -> function

    def complete(self, text: str, finish_reason: str) -> str:
        """The answer, with JSON that `max_tokens` cut closed (close_json) so that it still parses;
        finish_reason stays `length`, saying it was cut."""
        if finish_reason != "length":
            return text
        if self.kind == "json":
            return close_json(text)
        if self.kind == "tools" and text.lstrip().startswith(TOOL_OPEN) and TOOL_CLOSE not in text:
            head, _, call = text.partition(TOOL_OPEN)
            return f"{head}{TOOL_OPEN}{close_json(call.lstrip())}\n{TOOL_CLOSE}"
        return text

    def read(self, text: str) -> dict[str, Any]:
        """The answer as OpenAI's message fields: {"content", "tool_calls"} (tool_calls None when none)."""
        if self.kind == "tools" and text.lstrip().startswith(TOOL_OPEN):
            calls = parse_tool_calls(text, self.functions)
            if calls:
                return {"content": None, "tool_calls": calls}
        return {"content": text, "tool_calls": None}


def close_json(text: str) -> str:
    """`text`, the start of one JSON object or array, made whole: cut back to the last point where a
    value (or an opening bracket) ended, then the open brackets closed. A member whose key or value
    was cut is left out. Text that is already whole is returned up to its end."""
    stack: list[str] = []
    safe_at, safe_stack = 0, []
    in_string = escape = string_is_key = expecting_key = False
    in_scalar = False

    def mark(position: int) -> None:
        nonlocal safe_at, safe_stack
        safe_at, safe_stack = position, list(stack)

    for index, char in enumerate(text):
        if in_string:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == '"':
                in_string = False
                if not string_is_key:
                    mark(index + 1)
            continue
        if in_scalar and (char in ",}]" or char.isspace()):
            in_scalar = False
            mark(index)
        if char == '"':
            in_string, string_is_key = True, bool(stack) and stack[-1] == "{" and expecting_key
        elif char in "{[":
            stack.append(char)
            expecting_key = char == "{"
            mark(index + 1)
        elif char in "}]":
            if stack:
                stack.pop()
            mark(index + 1)
            if not stack:
                return text[: index + 1]
        elif char == ":":
            expecting_key = False
        elif char == ",":
            expecting_key = bool(stack) and stack[-1] == "{"
        elif not char.isspace():
            in_scalar = True
    closers = "".join("}" if bracket == "{" else "]" for bracket in reversed(safe_stack))
    return text[:safe_at].rstrip().rstrip(",") + closers


def _converter():
    from llama_cpp.llama_grammar import SchemaConverter

    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _rules(schema: dict[str, Any], name: str, param: str) -> str:
    """GBNF rules for `schema`, its top rule called `name`."""
    converter = _converter()
    try:
        resolved = converter.resolve_refs(schema, "request")
        converter.visit(resolved, name)
        return converter.format_grammar()
    except Exception as exc:  # noqa: BLE001 - the converter raises plain exceptions for what it cannot express
        raise ConstraintError(param, f"this JSON schema cannot be enforced: {exc}") from None


# JSON mode without a schema: one object, bounded so that a small model caught in a loop (the same
# key or item again and again, objects nested in themselves) must close it: at most 8 members or
# items per level, 3 levels, strings of at most 100 characters. The top object has at least one
# member: `{}` is a single token a small model likes to stop at.
JSON_OBJECT_GBNF = r"""
root ::= "{" ws member ( "," ws member ){0,7} ws "}"
member ::= string ":" ws value1
value1 ::= object2 | array2 | scalar
object2 ::= "{" ws ( member2 ( "," ws member2 ){0,7} )? ws "}"
member2 ::= string ":" ws value2
array2 ::= "[" ws ( value2 ( "," ws value2 ){0,7} )? ws "]"
value2 ::= object3 | array3 | scalar
object3 ::= "{" ws ( string ":" ws scalar ( "," ws string ":" ws scalar ){0,7} )? ws "}"
array3 ::= "[" ws ( scalar ( "," ws scalar ){0,7} )? ws "]"
scalar ::= string | number | "true" | "false" | "null"
string ::= "\"" char{0,100} "\""
char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
number ::= "-"? ([0-9] | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
ws ::= [ \t\n]{0,4}
"""


def json_grammar(schema: dict[str, Any] | None) -> str:
    """A grammar for one JSON object (`schema` None: bounded, see JSON_OBJECT_GBNF) or one value
    valid against `schema`."""
    if schema is None:
        return JSON_OBJECT_GBNF
    return _rules(schema, "", "response_format")


def _call_schema(function: dict[str, Any]) -> dict[str, Any]:
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "object", "properties": {"name": {"const": function["name"]}, "arguments": parameters},
            "required": ["name", "arguments"], "additionalProperties": False}  # fmt: skip


def tool_grammar(functions: list[dict[str, Any]], *, forced: bool) -> str:
    """One `<tool_call>{"name", "arguments"}</tool_call>` over `functions`; unless `forced`, or a plain
    answer instead (its first character is not `<`, so the first token decides)."""
    schema = {"anyOf": [_call_schema(f) for f in functions]} if len(functions) > 1 else _call_schema(functions[0])
    rules = _rules(schema, "toolcall", "tools")
    call = f'"{TOOL_OPEN}\\n" toolcall "\\n{TOOL_CLOSE}"'
    root = f"root ::= {call}" if forced else f"root ::= {call} | plaintext"
    extra = "" if forced else "\nplaintext ::= [^<] plainchar*\nplainchar ::= [^\\x00]"
    return f"{root}\n{rules}{extra}"


def parse_tool_calls(text: str, functions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI `tool_calls` from `<tool_call>...</tool_call>` blocks naming known functions."""
    calls = []
    for block in re.findall(r"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", text, flags=re.S):
        try:
            call = json.loads(block)
        except json.JSONDecodeError:
            continue
        if not isinstance(call, dict) or call.get("name") not in functions:
            continue
        arguments = call.get("arguments", {})
        calls.append({"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                      "function": {"name": call["name"], "arguments": json.dumps(arguments)}})  # fmt: skip
    return calls


def as_model_text(messages: Messages) -> Messages:
    """The conversation as plain role/content turns: an assistant's `tool_calls` written as
    `<tool_call>` blocks, a tool's result as a user turn in `<tool_response>` (as Qwen's template does)."""
    out = []
    for message in messages:
        content = message.get("content") or ""
        if message["role"] == "assistant" and message.get("tool_calls"):
            blocks = [f"{TOOL_OPEN}\n{json.dumps(_call_of(c))}\n{TOOL_CLOSE}" for c in message["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join(filter(None, [content, *blocks]))})
        elif message["role"] == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
        else:
            out.append({"role": message["role"], "content": content})
    return out


def _call_of(tool_call: dict[str, Any]) -> dict[str, Any]:
    function = tool_call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    with contextlib.suppress(json.JSONDecodeError):  # else kept as the string the client sent
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
    return {"name": function.get("name"), "arguments": arguments}


def _with_system(messages: Messages, text: str) -> Messages:
    """`text` added to the system message (one is made first when there is none)."""
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        return [{**first, "content": f"{first['content']}\n\n{text}".strip()}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def response_schema(response_format: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    """(kind, schema) of a response_format: ("text", None), ("json", None) or ("json", schema)."""
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return "json", None
    if kind == "json_schema":
        return "json", response_format["json_schema"].get("schema") or {"type": "object"}
    return "text", None


def build(messages: Messages, options: dict[str, Any]) -> Constraint:
    """The Constraint for a request's `options` (its response_format, tools, tool_choice)."""
    functions = [t["function"] for t in options.get("tools") or []]
    choice = options.get("tool_choice") or ("auto" if functions else "none")
    if functions and choice != "none":
        if isinstance(choice, dict):
            name = choice["function"]["name"]
            functions = [f for f in functions if f["name"] == name]
        prompt = _TOOLS_PROMPT.format(tools="\n".join(json.dumps({"type": "function", "function": f})
                                                      for f in functions))  # fmt: skip
        return Constraint(
            messages=_with_system(as_model_text(messages), prompt),
            grammar=tool_grammar(functions, forced=choice != "auto"),
            kind="tools",
            functions={f["name"]: f for f in functions},
        )
    kind, schema = response_schema(options.get("response_format"))
    if kind == "json":
        hint = _SCHEMA_PROMPT.format(schema=json.dumps(schema)) if schema is not None else _JSON_PROMPT
        return Constraint(messages=_with_system(as_model_text(messages), hint), grammar=json_grammar(schema),
                          kind="json", schema=schema)  # fmt: skip
    return Constraint(messages=as_model_text(messages))


def check(options: dict[str, Any]) -> None:
    """Raise ConstraintError when the request's format cannot be enforced (the API's 400, before queueing)."""
    build([{"role": "user", "content": ""}], options)
