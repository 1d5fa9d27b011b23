"""The Titanic data file: size, categories, ids, scorers, and every math reference checked with sympy."""

from __future__ import annotations

import pytest
import sympy

from bench.titanic import generate
from bench.titanic.scorers import SCORERS, score
from bench.titanic.suite import CATEGORIES, MICRO_SIZE, load_suite, validate

SUITE = load_suite()
X = sympy.Symbol("x")


def test_380_items_in_every_category_with_unique_ids_and_known_scorers():
    assert len(SUITE.items) == 380
    assert {item.category for item in SUITE.items} == set(CATEGORIES)
    assert len({item.id for item in SUITE.items}) == 380
    assert {item.scorer for item in SUITE.items} <= set(SCORERS)
    assert validate(SUITE, set(SCORERS)) == []


def test_paraphrase_groups_have_three_to_five_wordings_of_one_question():
    groups: dict[str, list] = {}
    for item in SUITE.items:
        if item.category == "paraphrase":
            groups.setdefault(item.group, []).append(item)
    assert len(groups) >= 10
    for members in groups.values():
        assert 3 <= len(members) <= 5
        assert len({m.reference for m in members}) == 1


def test_the_committed_file_is_what_the_generator_makes():
    assert generate.main(["--check"]) == 0


def test_every_reference_passes_its_own_scorer():
    for item in SUITE.items:
        if item.scorer == "code_tests":
            continue  # run in the sandbox below
        assert score(item.scorer, item.reference, item.reference, item.args, route="cloud").passed, item.id


def test_code_references_pass_their_hidden_tests_in_the_sandbox():
    code = [item for item in SUITE.items if item.scorer == "code_tests"]
    assert len(code) == 40
    for item in code:
        assert score("code_tests", item.reference, item.reference, item.args).passed, item.id


def _sympy(text: str):
    return sympy.sympify(text, locals={"x": X})


@pytest.mark.parametrize("item", [i for i in SUITE.items if i.check], ids=lambda i: i.id)
def test_math_reference_is_correct(item):
    check = item.check
    if "expr" in check and "task" not in check:  # a number: the reference equals the expression's value
        exact = _sympy(check["expr"])
        tol = float(check.get("tol", 1e-9))
        assert abs(float(exact) - float(sympy.Rational(check["value"]))) <= tol, (exact, item.reference)
        assert item.reference == check["value"]
        return
    expr = _sympy(check.get("expr", "0"))
    if check["task"] == "solve":
        equation = _sympy(check["lhs"]) - _sympy(check["rhs"])
        roots = sorted(sympy.solve(equation, X))
        assert [sympy.Rational(v) for v in item.args["values"]] == roots
        assert item.reference == ", ".join(f"x = {r}" for r in roots)
    elif check["task"] == "factor":
        got = _sympy(item.reference)
        assert sympy.expand(got - expr) == 0
        assert isinstance(got, sympy.Mul) and got != sympy.expand(got)
    elif check["task"] == "expand":
        got = _sympy(item.reference)
        assert got == sympy.expand(expr) and sympy.expand(got - expr) == 0
    elif check["task"] == "derivative":
        assert sympy.simplify(_sympy(item.reference) - sympy.diff(expr, X)) == 0
    elif check["task"] == "integral":
        antiderivative = _sympy(item.reference.removesuffix(" + C"))
        assert item.reference.endswith(" + C")
        assert sympy.simplify(sympy.diff(antiderivative, X) - expr) == 0
    else:
        pytest.fail(f"unknown check task {check['task']}")


def test_every_generated_math_item_carries_a_check():
    for item in SUITE.items:
        if item.category in ("arithmetic", "algebra", "reasoning"):
            assert item.check, item.id


def test_the_micro_slice_is_stratified_and_deterministic():
    micro = SUITE.stratified(MICRO_SIZE)
    assert len(micro) == MICRO_SIZE
    assert {item.category for item in micro} == set(CATEGORIES)
    assert [i.id for i in micro] == [i.id for i in SUITE.stratified(MICRO_SIZE)]
    assert len(SUITE.stratified(10)) == 10
