"""How long ``specml`` takes to refuse a mistake (and to print its help), as a user runs it: one process each.

Commands, against a throwaway home whose workspace holds the Pima table:

* ``specml --help``
* ``specml describe examples/pima_mlp/trainer.yaml`` (a trainer spec: refused)
* ``specml validate bad.yaml`` (an unknown key: refused by the structural checks)
* ``specml train -m model.yaml -T trainer.yaml --table missing`` (no such table)
* ``specml train -e random_forest_pima.yaml --table missing`` (the classical path)
* ``specml evaluate --model missing --table pima`` (no such model)

Each runs ``--repeat`` times (default 5) after one warm-up run; the median wall time and the median CPU
time of the process (user + system: steadier than wall time on a busy machine) are printed, with whether
the wall time is under the target (1 s) and any unexpected exit code or message. ``--baseline-src DIR``
runs the same commands with another source tree first on the path (e.g. a checkout before the change)
for a second column.

    .venv/bin/python bench/cheap_checks.py
    .venv/bin/python bench/cheap_checks.py --baseline-src /path/to/old/checkout/src
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pima_mlp"
ESTIMATOR = ROOT / "examples" / "classical" / "random_forest_pima.yaml"
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
TARGET_S = 1.0
BAD_SPEC = """inputs:
  x: {shape: [null, 4], columns: [a, b, c, d]}
graph:
  - name: out
    type: torch.nn.Linear
    params: {in_features: 4, out_features: 1}
    inputs: {input: x}
    extra_key: 1
outputs: {y: out.output}
"""


def commands(bad_spec: Path) -> list[tuple[str, list[str], int]]:
    """(label, argv after `specml`, expected exit code)."""
    return [
        ("specml --help", ["--help"], 0),
        ("describe trainer.yaml", ["describe", str(EXAMPLE / "trainer.yaml")], 1),
        ("validate a bad spec", ["validate", str(bad_spec)], 1),
        ("train --table missing", ["train", "-m", str(EXAMPLE / "model.yaml"), "-T", str(EXAMPLE / "trainer.yaml"),
                                   "--table", "missing", "--name", "x", "--no-tensorboard"], 1),
        ("train -e ... --table missing", ["train", "-e", str(ESTIMATOR), "--table", "missing", "--name", "x"], 1),
        ("evaluate --model missing", ["evaluate", "--model", "missing", "--table", "pima"], 1),
    ]


def time_one(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the child: user + system, exit code, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "specml", *argv], env=env, capture_output=True, text=True,
                          timeout=300)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (the median is shown)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="another source tree (its src/) to time the same commands with")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="specml-bench-"))
    try:
        bad_spec = home / "bad.yaml"
        bad_spec.write_text(BAD_SPEC, encoding="utf-8")
        trees = {"this tree": ROOT / "src"}
        if args.baseline_src is not None:
            trees = {"baseline": args.baseline_src.resolve(), **trees}
        envs = {}
        for label, src in trees.items():
            env = {**os.environ, "SPECML_HOME": str(home), "PYTHONPATH": str(src), "NO_COLOR": "1", "CI": "1"}
            env.pop("SPECML_WORKSPACE", None)
            envs[label] = env
        setup = subprocess.run([sys.executable, "-m", "specml", "data", "load", str(PIMA), "--table", "pima"],
                               env=envs["this tree"], capture_output=True, text=True, timeout=300)
        assert setup.returncode == 0, setup.stderr

        start = statistics.median(time_one_python(envs["this tree"]) for _ in range(args.repeat))
        rows = []
        for label, argv, expected in commands(bad_spec):
            row = [label]
            for tree, env in envs.items():
                time_one(argv, env)  # warm-up: file caches
                runs = [time_one(argv, env) for _ in range(args.repeat)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                codes = {r[2] for r in runs}
                said = runs[-1][3].strip().splitlines()[0] if runs[-1][3].strip() else ""
                ok = codes == {expected} and (expected == 0 or said.startswith("error"))
                row += [f"{wall:.2f}", f"{cpu:.2f}", "yes" if wall < TARGET_S else "no",
                        "" if ok else f"exit {codes}: {said}"]
            rows.append(row)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    header = ["command"]
    for tree in envs:
        header += [f"{tree}: wall s", "CPU s", "wall < 1 s", "unexpected"]
    print(f"median of {args.repeat} runs each; `python -c pass` takes {start:.2f} s here; "
          f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def time_one_python(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
