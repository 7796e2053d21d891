"""Interleaved A/B of two commits on the chain and MLP steps: does a change slow a remote step?

    python benchmarks/ab.py BASE [HEAD] [--rounds 7] [--steps 150]

Each commit is checked out into a temporary folder (git worktree) and imported from there (the
package's folders laid out as they install), so both sides run the same programs
(benchmarks/engine_vs_torch.py of this checkout) on their own client and server. A round times
each side in a process of its own, with its own server process, the order alternating between
rounds; the report is per workload the median step time of each side, and the median and spread
of the per-round ratio HEAD / BASE (under 1: HEAD is faster). HEAD defaults to the work tree.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _steps import report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAYERS = {"engine": "engine", "server": "server", "protos": "protos"}

CHILD = r"""
import json, subprocess, sys
import remote_autograd as ra
from _steps import median_steps
server = subprocess.Popen([sys.executable, "-m", "remote_autograd.server", "--port", "0", "--log-level", "WARNING"],
                          stdout=subprocess.PIPE, text=True)
address = server.stdout.readline().split()[-1]
try:
    out = median_steps(lambda: ra.connect(address), STEPS)
    out["wire"] = None  # (an older commit's session may not say)
finally:
    server.terminate()
    server.wait()
print(json.dumps(out))
"""


def lay_out(tree: str, into: str) -> str:
    """The package as it installs (pyproject's package-dir), as symlinks into a checkout."""
    pkg = os.path.join(into, "remote_autograd")
    os.makedirs(pkg)
    for name in os.listdir(os.path.join(tree, "client")):
        os.symlink(os.path.join(tree, "client", name), os.path.join(pkg, name))
    for sub, folder in LAYERS.items():
        os.symlink(os.path.join(tree, folder), os.path.join(pkg, sub))
    return into


def measure(path: str, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([path, HERE]))
    code = CHILD.replace("STEPS", str(steps))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("base")
    p.add_argument("head", nargs="?", default=None, help="a commit; default: the work tree")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for side, ref in (("base", args.base), ("head", args.head)):
            if ref is None:
                trees[side] = lay_out(ROOT, os.path.join(tmp, side))
                continue
            checkout = os.path.join(tmp, f"{side}-tree")
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", checkout, ref], check=True)
            trees[side] = lay_out(checkout, os.path.join(tmp, side))
        try:
            runs = {"base": [], "head": []}
            for r in range(args.rounds):
                order = ("base", "head") if r % 2 == 0 else ("head", "base")
                for side in order:
                    runs[side].append(measure(trees[side], args.steps))
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                    f"{w} {runs['head'][-1][w] / runs['base'][-1][w]:.3f}" for w in ("chain", "mlp")), flush=True)
        finally:
            for side in ("base", "head"):
                checkout = os.path.join(tmp, f"{side}-tree")
                if os.path.isdir(checkout):
                    subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", checkout], check=False)
    print(f"\nA/B: {args.base} (base) against {args.head or 'the work tree'} (head), {args.rounds} rounds "
          f"of {args.steps} steps, each side in its own processes, order alternating")
    report(runs, "base", "head")


if __name__ == "__main__":
    main()
