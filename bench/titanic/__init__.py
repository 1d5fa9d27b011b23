"""Titanic: the release benchmark. 380 prompts with references and scorers (bench/data/titanic_v1.yaml),
run through the live HTTP API of a stack of its own; see bench/titanic/run.py and docs in bench.mk."""
