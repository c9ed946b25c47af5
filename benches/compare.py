#!/usr/bin/env python3
"""Bakery's benchmarks before and after a change, side by side in one run.

    python3 benches/compare.py BASE [--bench pools] [--rounds 2] [FILTER...]

BASE is a git revision (a commit, a tag, `HEAD~3`). The script builds the
bench binary twice, once from BASE (checked out with `git worktree` under
`target/compare/base`) and once from the working tree, then runs the two
binaries one after the other, ROUNDS times, alternating which goes first,
so that both sides see the same machine at nearly the same moments. Each
run writes criterion's results under its own directory
(`target/compare/<side>-<round>`, through `CRITERION_HOME`). FILTER is
passed on to criterion (a regular expression on benchmark ids); several
are joined with `|`.

It prints, for every benchmark id measured on both sides, the median over
rounds of criterion's mean on each side and their ratio, after / before:
below 1, the change made it faster. The other pools in the same groups are
a check on the machine: their ratio should stay near 1, and how far it
strays is the noise of this run. Standard library only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPARE = ROOT / "target" / "compare"


def build(crate_dir, bench, target_dir):
    """Builds the bench binary in `crate_dir`; returns its path."""
    command = [
        "cargo", "bench", "--bench", bench, "--no-run", "--message-format=json",
    ]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    out = subprocess.run(
        command, cwd=crate_dir, env=env, check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            if message["target"]["name"] == bench:
                return message["executable"]
    sys.exit(f"no executable for bench {bench} in {crate_dir}")


def checkout(base):
    """A worktree of `base` under target/compare/base."""
    path = COMPARE / "base"
    if path.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=True)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), base], cwd=ROOT, check=True
    )
    return path


def results(criterion_dir):
    """{benchmark id: mean in ns} under one run's criterion directory."""
    found = {}
    for benchmark_json in criterion_dir.glob("**/new/benchmark.json"):
        try:
            ids = json.loads(benchmark_json.read_text())
            estimates = json.loads((benchmark_json.parent / "estimates.json").read_text())
        except (OSError, ValueError):
            continue
        found[ids["full_id"]] = estimates["mean"]["point_estimate"]
    return found


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("filters", nargs="*")
    parser.add_argument("--bench", default="pools")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_intermixed_args()

    base_dir = checkout(args.base)
    binaries = {
        "before": build(base_dir, args.bench, COMPARE / "target-base"),
        "after": build(ROOT, args.bench, COMPARE / "target-head"),
    }
    runs = {"before": [], "after": []}
    for round_ in range(args.rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for side in order:
            home = COMPARE / f"{side}-{round_}"
            subprocess.run(["rm", "-rf", str(home)], check=True)
            command = [binaries[side], "--bench"]
            if args.filters:
                command.append("|".join(args.filters))
            print(f"==> round {round_ + 1}, {side}", flush=True)
            env = dict(os.environ, CRITERION_HOME=str(home))
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            runs[side].append(results(home))

    ids = sorted(set.intersection(*(set(r) for r in runs["before"] + runs["after"])))
    print(f"\nbefore: {args.base}, after: the working tree; {args.rounds} rounds, "
          "median of criterion's means\n")
    print("| benchmark | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for id_ in ids:
        before = statistics.median(r[id_] for r in runs["before"])
        after = statistics.median(r[id_] for r in runs["after"])
        print(f"| {id_} | {fmt(before)} | {fmt(after)} | {after / before:.2f} |")


if __name__ == "__main__":
    main()
