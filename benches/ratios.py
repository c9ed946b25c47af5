#!/usr/bin/env python3
"""Bakery's criterion times relative to the other pools, as markdown.

Run it after `cargo bench --bench pools`:

    python3 benches/ratios.py [CRITERION_DIR]

It reads `<group>/<function>/new/estimates.json` (the mean's point estimate)
and `benchmark.json` (the ids) under CRITERION_DIR, by default
`$CARGO_TARGET_DIR/criterion` or else `target/criterion` next to this
script's crate. In each group, every benchmark whose id does not start with
`bakery` is paired with `bakery_<variant>` when its id is `<pool>_<variant>`
and that bakery benchmark exists, and with plain `bakery` otherwise. The
ratio is bakery's mean time divided by the other's: below 1, bakery is
faster. A pair with a missing side gets no ratio, and a pair whose two
results were written more than 30 minutes apart is marked, since it mixes
two runs. Criterion's own "time:" line shows the slope estimate for
linearly sampled benchmarks, so it can differ a little from the mean used
here. Standard library only.
"""

import json
import os
import sys
from pathlib import Path

# Groups in the order benches/pools.rs runs them; any other group follows.
GROUP_ORDER = [
    "tiny_orders",
    "tiny_orders_shared",
    "fork_join_fib",
    "fork_join_sort",
    "order_tree",
    "uneven",
    "round_trip_idle",
    "round_trip_busy",
]
STALE_SECONDS = 30 * 60


def default_dir():
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "criterion"
    return Path(__file__).resolve().parent.parent / "target" / "criterion"


def load(criterion_dir):
    """{group: {function: {"mean", "low", "high", "median": ns, "mtime": s}}}"""
    results = {}
    for benchmark_json in sorted(criterion_dir.glob("**/new/benchmark.json")):
        new = benchmark_json.parent
        estimates_json = new / "estimates.json"
        try:
            ids = json.loads(benchmark_json.read_text())
            estimates = json.loads(estimates_json.read_text())
            mean = estimates["mean"]
        except (OSError, ValueError, KeyError) as error:
            print(f"skipping {new}: {error}", file=sys.stderr)
            continue
        group, function = ids.get("group_id"), ids.get("function_id")
        if not group or not function:
            continue
        if ids.get("value_str"):
            function = f"{function}/{ids['value_str']}"
        results.setdefault(group, {})[function] = {
            "mean": mean["point_estimate"],
            "low": mean["confidence_interval"]["lower_bound"],
            "high": mean["confidence_interval"]["upper_bound"],
            "median": estimates.get("median", {}).get("point_estimate"),
            "mtime": estimates_json.stat().st_mtime,
        }
    return results


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def baseline_for(function, functions):
    pool, _, variant = function.partition("_")
    if variant and f"bakery_{variant}" in functions:
        return f"bakery_{variant}"
    return "bakery"


def ordered_groups(results):
    known = [g for g in GROUP_ORDER if g in results]
    return known + sorted(g for g in results if g not in GROUP_ORDER)


def main(argv):
    criterion_dir = Path(argv[1]) if len(argv) > 1 else default_dir()
    if not criterion_dir.is_dir():
        print(
            f"no criterion results in {criterion_dir}: run `cargo bench --bench pools` first",
            file=sys.stderr,
        )
        return 1
    results = load(criterion_dir)
    if not results:
        print(f"no criterion results found under {criterion_dir}", file=sys.stderr)
        return 1

    stale_marks = False
    print("## bakery relative to the other pools")
    print()
    print("Mean time per iteration; ratio = bakery / other (below 1: bakery is faster).")
    print()
    print("| group | bakery bench | other bench | bakery | other | bakery / other |")
    print("|---|---|---|---:|---:|---:|")
    for group in ordered_groups(results):
        functions = results[group]
        others = [f for f in functions if not f.startswith("bakery")]
        for other in sorted(others):
            base = baseline_for(other, functions)
            mine, theirs = functions.get(base), functions[other]
            if mine is None:
                print(f"| {group} | {base} | {other} | missing | {fmt_time(theirs['mean'])} | n/a |")
                continue
            ratio = f"{mine['mean'] / theirs['mean']:.2f}"
            if abs(mine["mtime"] - theirs["mtime"]) > STALE_SECONDS:
                ratio += " †"
                stale_marks = True
            print(
                f"| {group} | {base} | {other} | {fmt_time(mine['mean'])} "
                f"| {fmt_time(theirs['mean'])} | {ratio} |"
            )
        if not others:
            print(f"| {group} | bakery | (no other pool) | — | — | n/a |")
    if stale_marks:
        print()
        print("† the two results were written more than 30 minutes apart (different runs).")

    print()
    print("## Raw times")
    print()
    print("| benchmark | mean | mean's 95% confidence interval | median |")
    print("|---|---:|---|---:|")
    for group in ordered_groups(results):
        for function, r in sorted(results[group].items()):
            median = fmt_time(r["median"]) if r["median"] is not None else "—"
            print(
                f"| {group}/{function} | {fmt_time(r['mean'])} "
                f"| {fmt_time(r['low'])} – {fmt_time(r['high'])} | {median} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
