"""The Titanic runner end to end against a made-up gateway on loopback (no stack, no model): the report
starts with the headline, counts the replay apart, and labels every item with its part."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.replay_provider import normalize_prompt
from bench.titanic import headline
from bench.titanic.run import main as titanic
from bench.titanic.suite import load_suite

SUITE = load_suite()
BY_PROMPT = {normalize_prompt(item.prompt): item for item in SUITE.items}


def answer_for(prompt: str) -> dict:
    """code: UNSURE; stub traps: the replay's answer; reasoning: a confident wrong answer; the rest right."""
    item = BY_PROMPT[normalize_prompt(prompt)]
    if item.category == "code":
        return {"answer": "UNSURE", "route": "unsure", "skill_type": "unsure", "confidence": 0.0}
    if item.category == "stub_trap":
        return {"answer": item.reference, "route": "cloud", "skill_type": "cloud", "confidence": 0.9,
                "provider": "titanic-replay", "cost_usd": 0.0005}  # fmt: skip
    if item.category == "reasoning":
        return {"answer": "a confident mistake", "route": "council", "skill_type": "agent0", "confidence": 0.9}
    return {"answer": item.reference, "route": "council", "skill_type": "knowledge", "confidence": 0.95}


class Gateway(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps({**answer_for(body["prompt"]), "cached": False, "latency_ms": 1.0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(gateway: str, tmp_path, *args: str) -> dict:
    out = tmp_path / "titanic.json"
    assert titanic(["--url", gateway, "--concurrency", "2", "--out", str(out), *args]) == 0
    return json.loads(out.read_text())


def test_the_report_opens_with_the_headline_and_counts_the_replay_apart(gateway, tmp_path, capsys):
    report = run(gateway, tmp_path, "--limit", "40")
    assert list(report)[:4] == ["benchmark", "when", "headline", "confidence_floor"]
    items = report["items"]
    cats = Counter(item["category"] for item in items)
    overall = report["headline"]["overall"]
    assert overall["n"] == 40 and overall["counts"]["local_right"] == 40 - cats["code"] - cats["stub_trap"] - cats[
        "reasoning"]  # fmt: skip
    assert overall["counts"]["confidently_wrong"] == cats["reasoning"] > 0
    assert overall["escalation_rate"] == round((cats["code"] + cats["stub_trap"]) / 40, 4)
    assert overall["counts"]["declined_must_abstain"] == cats["stub_trap"]
    assert report["replay"]["answers"] == cats["stub_trap"] and report["replay"]["providers"] == {
        "titanic-replay": cats["stub_trap"]}  # fmt: skip
    assert report["composite_with_replay"] == round((overall["counts"]["local_right"] + cats["stub_trap"]) / 40, 4)
    assert report["headline"] == headline.headline(items, floor=report["confidence_floor"])
    parts = SUITE.parts()
    assert all(item["part"] == parts[item["id"]] for item in items)
    assert report["headline"]["tuning"]["n"] + report["headline"]["heldout"]["n"] == 40
    assert "composite_accuracy >= 85%" not in report["targets"]
    printed = capsys.readouterr().out
    assert printed.index("HEADLINE") < printed.index("composite with replay") < printed.index("effective success")


def test_one_part_runs_only_its_items(gateway, tmp_path):
    report = run(gateway, tmp_path, "--part", "heldout", "--limit", "12")
    assert {item["part"] for item in report["items"]} == {"heldout"} and report["n"] == 12
    assert report["headline"]["tuning"]["n"] == 0 and report["headline"]["heldout"]["n"] == 12
    assert report["suite"]["slice"] == "stratified 12 of heldout" and report["split"]["part_run"] == "heldout"
    assert report["targets"]["heldout local_accuracy_all >= 70%"]["value"] is not None
