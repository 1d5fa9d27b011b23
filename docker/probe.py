"""Container health probe: `python docker/probe.py URL [--status 200,503|any]` exits 0 when URL answers with one
of those HTTP statuses (default 200), 1 otherwise. Standard library only: the slim image has no curl.

docker/compose.yaml's healthchecks use it, e.g. the API is healthy once /health answers at all (200, or 503
while a worker is still loading: /health's body says which).
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--status", default="200", help="comma-separated HTTP statuses that pass, or 'any'")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as response:  # noqa: S310 - a URL we are given
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"{args.url}: no answer ({exc})", file=sys.stderr)
        return 1
    passing = args.status == "any" or str(status) in args.status.split(",")
    print(f"{args.url}: HTTP {status}", file=sys.stderr if not passing else sys.stdout)
    return 0 if passing else 1


if __name__ == "__main__":
    raise SystemExit(main())
