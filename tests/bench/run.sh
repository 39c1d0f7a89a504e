#!/usr/bin/env bash
# make bench: figures measured in one run on this machine, with their
# baselines, written to bench/results/ (see tests/bench/bench.py).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/bench/bench.py --build "$BUILD" --out bench/results
