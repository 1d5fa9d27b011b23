"""What more witnesses would tell the code head: every candidate solution's behaviour on the probes, kept.

Usage: python -m bench.code_witnesses [--model qwen2.5-coder-0.5b] [--part tuning] [--witnesses 4]
                                      [--answers 3] [--temperature 0.7]
                                      [--only HumanEval/1,HumanEval/7] [--out PATH]
       python -m bench.code_witnesses --rescore PATH

For each HumanEval problem of one part (bench/split.py; the code head is shaped on `tuning` only), in this
process, with the code head's own prompts, seeds and sandbox (routing/heads/code.py):

- the answer: greedy, and when it fails the prompt's tests the sampled redraws the head would draw (up to
  --answers in all, the head's MAX_ANSWERS by default; each one's prompt-test result kept);
- --witnesses second solutions (the head's second instruction, seeds SECOND_SEED + i), each run against the
  prompt's tests; redraws and witnesses are sampled at --temperature (the head's SECOND_TEMPERATURE by default);
- one sandbox run calling every candidate on the head's probes (derive_probes) under the head's time guards:
  each call's outcome kept as a short key (returned value's type and repr, raised error, timeout);
- each candidate graded on the problem's own hidden tests (bench/humaneval.py `grade`).

The report keeps all of it, so trust rules can be compared offline (`rules` below): the rule in the head
(the first witness that passes the prompt's tests decides) and alternatives, each with what it trusts and
how much of that fails the hidden tests. Nothing here changes the head.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.humaneval import MAX_TOKENS, grade, load_problems, part_of, wrap_prompt
from bench.reporting import shown_path, write_report
from routing.heads import code as head
from routing.sandbox import run_python

NAME = "code_witnesses"

# One sandbox run: every candidate defined in its own namespace, then every probe called on each under the
# head's guard; the outcome keys are printed as JSON after the marker.
_SCRIPT = (
    head.GUARD_PRELUDE
    + r"""

def _swarm_key(outcome):
    if outcome[0] != "ok":
        return outcome[0] + ":" + str(outcome[1])
    shown = _swarm_guard(lambda: type(outcome[1]).__name__ + ":" + repr(outcome[1])[:200], 0.2)
    return shown[1] if shown[0] == "ok" else "unshowable"


def _swarm_main(p):
    signal.signal(signal.SIGALRM, _swarm_alarm)
    rows = []
    spaces = []
    for index, code in enumerate(p["solutions"]):
        space = {"__name__": "__swarm_solution_%d__" % index, "__builtins__": __builtins__}
        done = _swarm_guard(lambda: exec(compile(code, "<solution>", "exec"), space), p["define_s"])
        spaces.append(space if done[0] == "ok" else None)
    for name, call in p["probes"]:
        row = []
        for space in spaces:
            args, kwargs = ast.literal_eval(call)
            fn = space.get(name) if space is not None else None
            row.append(_swarm_key(_swarm_guard(lambda: fn(*args, **kwargs), p["call_s"])) if callable(fn)
                       else "undefined")
        rows.append(row)
    print("\n" + p["marker"] + json.dumps(rows), flush=True)


_swarm_main({payload!r})
"""
)


def probe_outcomes(solutions: list[str], probes: list[tuple[str, str]]) -> list[list[str]] | None:
    """outcome key per probe (rows) per solution (columns); None when the run did not report."""
    marker = f"__swarm_witness_{secrets.token_hex(8)}__:"
    payload = {"solutions": solutions, "probes": [list(p) for p in probes], "marker": marker,
               "call_s": head.PROBE_CALL_S, "define_s": 2 * head.PROBE_CALL_S + 1.0}  # fmt: skip
    result = run_python(code=_SCRIPT.replace("{payload!r}", repr(payload)), wall_s=30.0, cpu_s=25)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
    return None


def collect(
    generate: Callable[..., Any],
    problem: dict[str, Any],
    *,
    witnesses: int,
    answers_max: int = head.MAX_ANSWERS,
    temperature: float = head.SECOND_TEMPERATURE,
) -> dict[str, Any]:
    prompt = wrap_prompt(problem["prompt"])
    started = time.perf_counter()
    messages = [{"role": "system", "content": head.SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    second = [{"role": "system", "content": head.SECOND_SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    answers = [head.extract_solution(generate(messages, max_tokens=MAX_TOKENS, temperature=0.0).text)]
    functions = head.defined_functions(answers[0])
    tests = head.derive_tests(prompt, functions)
    row: dict[str, Any] = {"task_id": problem["task_id"], "tests": len(tests), "functions": sorted(functions)}
    if not functions or not tests:
        row["answer"] = {"prompt_tests": None, "hidden": grade(problem, f"```python\n{answers[0]}\n```").passed}
        return row

    def prompt_tests(code: str) -> bool:
        return head.CodeHead().run_tests(code, tests)[0]

    passed = [prompt_tests(answers[0])]
    for drawn in range(1, answers_max):
        if passed[-1]:
            break
        answers.append(head.extract_solution(generate(messages, max_tokens=MAX_TOKENS, temperature=temperature,
                                                  seed=head.ANSWER_SEED + drawn - 1).text))  # fmt: skip
        passed.append(prompt_tests(answers[-1]))
    answer = answers[-1] if passed[-1] else answers[0]
    row["answers_passed"] = passed
    if not passed[-1]:  # nothing to trust: no witness is drawn (the head draws none either)
        hidden = grade(problem, f"```python\n{answer}\n```").passed
        row.update({"answers_drawn": len(answers), "answer": {"prompt_tests": False, "hidden": hidden}})
        return row
    seconds = [
        head.extract_solution(generate(second, max_tokens=MAX_TOKENS, temperature=temperature,
                                   seed=head.SECOND_SEED + i).text)
        for i in range(witnesses)
    ]  # fmt: skip
    probes = head.derive_probes(tests, functions)
    outcomes = probe_outcomes([answer, *seconds], probes) if probes else []
    row.update({
        "answers_drawn": len(answers),
        "answer": {"prompt_tests": passed[-1], "hidden": grade(problem, f"```python\n{answer}\n```").passed},
        "witnesses": [{"prompt_tests": prompt_tests(code), "hidden": grade(problem, f"```python\n{code}\n```").passed}
                      for code in seconds],
        "probes": [f"{name}{call[:120]}" for name, call in probes],
        "outcomes": outcomes,
        "seconds": round(time.perf_counter() - started, 1),
    })  # fmt: skip
    return row


# --- rules, offline ---------------------------------------------------------------------------------


def _compared(row: dict[str, Any], column: int) -> tuple[int, int, int]:
    """(probes run, probes agreed, probes the witness refused) between the answer (column 0) and one witness
    column, counted by the head's own rule (routing/heads/code.py `probe_verdict`) on the outcome keys."""
    run = agreed = refused = 0
    for probe in row.get("outcomes") or []:
        first, other = probe[0], probe[column]
        timed_out = first.startswith("timeout") or other.startswith("timeout")
        verdict = head.probe_verdict(None if timed_out else first == other, answer_raised=first.startswith("raised"),
                                     witness_raised=other.startswith("raised"))  # fmt: skip
        run += verdict in (head.AGREED, head.DIFFERED)
        agreed += verdict == head.AGREED
        refused += verdict == head.REFUSED_BY_WITNESS
    return run, agreed, refused


def _summary(row: dict[str, Any], column: int) -> dict[str, Any]:
    """The candidate in `column` as the head's differential run counts it (`differential_summary`): no witness
    (`second_error`) when it fails the prompt's tests or refuses most probes (`refuses_most`), else its probes."""
    if not row["witnesses"][column - 1]["prompt_tests"]:
        return {"second_error": "fails the prompt's tests"}
    run, agreed, refused = _compared(row, column)
    if refusing := head.refuses_most(run, refused):
        return {"second_error": refusing}
    return {"agree": run == agreed, "probes_run": run, "disagreement": run > agreed or None}


def _valid(row: dict[str, Any]) -> list[int]:
    """The witness columns (1-based): candidates that passed the prompt's tests and answer most probes."""
    return [c for c in range(1, len(row.get("witnesses") or []) + 1) if not _summary(row, c).get("second_error")]


def rule_first_witness(row: dict[str, Any], limit: int = head.MAX_WITNESSES) -> bool:
    """The head's rule: the first of `limit` witnesses that passes the prompt's tests decides."""
    valid = [c for c in _valid(row) if c <= limit]
    return bool(valid) and head._agrees(_summary(row, valid[0]))


def rule_two_of_three(row: dict[str, Any]) -> bool:
    """Two valid witnesses (of the first four) agree fully with the answer; a disagreeing one is outvoted
    only when two others agree."""
    full = [head._agrees(_summary(row, c)) for c in _valid(row)]
    return sum(full) >= 2 and sum(full) > len(full) - sum(full)


def rule_majority_probe(row: dict[str, Any]) -> bool:
    """Per probe, the answer's outcome is the most common among the answer and the valid witnesses (>= 2),
    strictly; >= MIN_PROBES probes where it is."""
    cols = _valid(row)
    if len(cols) < 2:
        return False
    wins = 0
    for probe in row.get("outcomes") or []:
        keys = [probe[0], *(probe[c] for c in cols)]
        if any(k.startswith("timeout") for k in keys):
            continue
        share = keys.count(probe[0])
        if share * 2 <= len(keys):
            return False
        wins += 1
    return wins >= head.MIN_PROBES


def rule_votes(row: dict[str, Any], limit: int = head.MAX_WITNESSES) -> bool:
    """The head's votes (routing/heads/code.py `trusted_by`), replayed on the first `limit` candidates in the
    order the head draws them, stopping where it stops."""
    summaries: list[dict[str, Any]] = []
    for column in range(1, min(limit, len(row.get("witnesses") or [])) + 1):
        summaries.append(_summary(row, column))
        if head.settled(summaries, limit - column):
            break
    return head.trusted_by(head._votes(summaries))


def answer_within(row: dict[str, Any], limit: int) -> bool:
    """Whether the answer that passed the prompt's tests was among the first `limit` drawn (rows written
    before answers_passed was kept drew at most the head's MAX_ANSWERS)."""
    passed = row.get("answers_passed")
    return passed is None or (bool(passed) and passed[-1] and len(passed) <= limit)


RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "first_witness (the head before)": lambda row: answer_within(row, head.MAX_ANSWERS) and rule_first_witness(row),
    "votes, 3 candidates": lambda row: answer_within(row, head.MAX_ANSWERS) and rule_votes(row, 3),
    "votes (the head now: MAX_ANSWERS answers, MAX_WITNESSES candidates)": lambda row: (
        answer_within(row, head.MAX_ANSWERS) and rule_votes(row)
    ),
    "votes, every answer and candidate drawn": lambda row: rule_votes(row, len(row.get("witnesses") or [])),
    "two_witnesses_agree": rule_two_of_three,
    "majority_per_probe": rule_majority_probe,
}


def rules(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rule in RULES.items():
        trusted = [r for r in rows if r.get("answer", {}).get("prompt_tests") and rule(r)]
        out[name] = {"trusted": len(trusted), "trusted_pass": sum(r["answer"]["hidden"] for r in trusted),
                     "trusted_fail": [r["task_id"] for r in trusted if not r["answer"]["hidden"]]}  # fmt: skip
    out["answer_passes_hidden"] = sum(bool(r.get("answer", {}).get("hidden")) for r in rows)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--part", default="tuning", choices=("tuning", "heldout"))
    parser.add_argument("--witnesses", type=int, default=4)
    parser.add_argument("--answers", type=int, default=head.MAX_ANSWERS, help="answers drawn at most (the head's)")
    parser.add_argument("--temperature", type=float, default=head.SECOND_TEMPERATURE,
                        help="of the sampled answers and the witnesses (the head's)")  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated task ids")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rescore", type=Path, default=None, help="recompute the rules of a written report")
    args = parser.parse_args(argv)
    if args.rescore:
        report = json.loads(args.rescore.read_text())
        print(json.dumps(rules(report["rows"]), indent=1))
        return 0
    import django

    django.setup()
    from inference.registry import load_registry
    from inference.runtime import build_backend

    only = {t for t in args.only.split(",") if t}
    problems = [p for p in load_problems() if part_of(p["task_id"]) == args.part and (not only or p["task_id"] in only)]
    backend = build_backend(load_registry().get(args.model))
    backend.load()
    rows: list[dict[str, Any]] = []
    began = datetime.now(UTC)
    try:
        for index, problem in enumerate(problems, 1):
            rows.append(collect(backend.generate, problem, witnesses=args.witnesses, answers_max=args.answers,
                                temperature=args.temperature))  # fmt: skip
            shown = [w["prompt_tests"] for w in rows[-1].get("witnesses", [])]
            print(f"{index}/{len(problems)} {problem['task_id']} {json.dumps(rows[-1].get('answer'))} {shown}",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        backend.unload()
    report = {"benchmark": NAME, "when": began.isoformat(), "model": args.model, "part": args.part,
              "witnesses": args.witnesses, "answers": args.answers, "temperature": args.temperature,
              "rules": rules(rows), "rows": rows}  # fmt: skip
    path = write_report(NAME, report, out=args.out, echo=False)
    print(json.dumps(report["rules"], indent=1))
    print(f"wrote {shown_path(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
