"""python -m bench.titanic: run the suite (see bench/titanic/run.py)."""

from bench.titanic.run import main

if __name__ == "__main__":
    raise SystemExit(main())
