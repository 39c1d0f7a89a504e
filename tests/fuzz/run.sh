#!/usr/bin/env bash
# Runs libFuzzer targets: tests/fuzz/run.sh BIN_DIR SECONDS NAME...
#
# For each NAME: replays every file of tests/fuzz/NAME/ once (the seed
# corpus and the regression inputs of crashes found earlier: any failure
# fails the run), then fuzzes for SECONDS starting from them. New corpus
# entries go to build-fuzz/corpus/NAME (kept between runs, never
# committed); a crashing, leaking or too slow input is written to
# tests/fuzz/NAME/ (crash-*, leak-*, timeout-*, oom-*), where it stays as a
# regression input once the bug is fixed. The full libFuzzer output is in
# build-fuzz/logs/NAME.log. One process per target, niced: one core.
set -uo pipefail
cd "$(dirname "$0")/../.."

bin_dir=$1 seconds=$2
shift 2
max_len=${FUZZ_MAX_LEN:-65536}
work=build-fuzz
mkdir -p "$work/logs"
failed=()
for name in "$@"; do
	bin=$bin_dir/fuzz_$name
	seeds=tests/fuzz/$name
	log=$work/logs/$name.log
	corpus=$work/corpus/$name
	mkdir -p "$corpus"
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "fuzz $name: no $bin or no $seeds/" >&2
		failed+=("$name")
		continue
	fi
	# 1. every committed input, once
	if ! nice "$bin" -close_fd_mask=2 -timeout=10 "$seeds"/* >"$log" 2>&1; then
		echo "fuzz $name: FAILED replaying $seeds/ (see $log):" >&2
		grep -E '^(Running|==[0-9]+==ERROR|SUMMARY|ALARM)' "$log" | tail -5 >&2
		failed+=("$name")
		continue
	fi
	n_seeds=$(find "$seeds" -maxdepth 1 -type f | wc -l)
	# 2. fuzz from them (with tests/fuzz/NAME.dict when there is one)
	dict=()
	[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	start=$(date +%s)
	nice "$bin" "${dict[@]}" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$seeds/" "$corpus" "$seeds" >>"$log" 2>&1
	rc=$?
	ran=$(( $(date +%s) - start ))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	if [ $rc -ne 0 ]; then
		echo "fuzz $name: FAILED after ${ran} s (see $log); the input is in $seeds/:" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|ALARM|artifact_prefix|Test unit written)' "$log" | tail -5 >&2
		failed+=("$name")
		continue
	fi
	echo "fuzz $name: $n_seeds committed inputs replayed; clean for ${ran} s, ${runs:-?} runs (${rate:-?}/s), corpus $(find "$corpus" -type f | wc -l) entries"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
