"""Time ``build_report`` (default options) on a simulated 975-selector × 20-round export.

    python benchmarks/bench_report.py [--groups 325] [--rounds 20] [--seed 0] [--keep DIR]

Two treatments (hidden, disclosed) in rotation; heterogeneous Rescorla–Wagner learners: each selector
draws alpha ~ Beta(3, 7) (mean 0.3), beta ~ lognormal around 8, and in disclosed an anti-AI bias
~ Normal(−1, 0.5) (no badges in hidden, so the bias does nothing there); 2% choice timeouts. The
candidates export is passed too, as a full report would. Prints the simulation time, each report step's
seconds (``build_report(timings=...)``) and the total; the target is < 30 s on the 2-core machine
(docs/benchmarks.md). The mixed logit (lme4 glmer in R) is part of the default report ('auto'); with a core
free it runs in the background from the start while Python fits the curves and learning models, and its own
time is printed apart.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analysis  # noqa: E402,F401  (sets single-threaded BLAS before numpy loads)
import numpy as np  # noqa: E402

from analysis.io import write_export  # noqa: E402
from analysis.report import build_report  # noqa: E402
from analysis.simulate import simulate_session  # noqa: E402


def simulate_export(n_groups: int, n_rounds: int, seed: int):
    """Decisions and candidates of a two-treatment session with heterogeneous RW learners."""
    rng = np.random.default_rng(seed)
    n = n_groups * 3
    treatment = np.array(['hidden', 'disclosed'])[np.repeat(np.arange(n_groups) % 2, 3)]
    params = dict(alpha=rng.beta(3, 7, n), beta=np.exp(rng.normal(np.log(8), 0.3, n)),
                  bias=np.where(treatment == 'disclosed', rng.normal(-1.0, 0.5, n), 0.0))
    return simulate_session('rescorla_wagner', params, treatments=['hidden', 'disclosed'], n_groups=n_groups,
                            n_rounds=n_rounds, timeout_rate=0.02, seed=seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--groups', type=int, default=325, help='mini-societies of 3 selectors (default 325 = 975)')
    parser.add_argument('--rounds', type=int, default=20, help='rounds (default 20)')
    parser.add_argument('--seed', type=int, default=0, help='simulation seed')
    parser.add_argument('--keep', metavar='DIR', help='write the report here (default: a temporary folder)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    args = parser.parse_args(argv)

    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
          f'load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}', flush=True)
    started = time.perf_counter()
    decisions, candidates = simulate_export(args.groups, args.rounds, args.seed)
    print(f'{"simulate " + str(args.groups * 3) + " selectors x " + str(args.rounds) + " rounds":<48s} '
          f'{time.perf_counter() - started:8.2f} s', flush=True)
    with tempfile.TemporaryDirectory() as folder:
        export, cand = Path(folder) / 'decisions.csv', Path(folder) / 'candidates.csv'
        write_export(decisions, export)
        write_export(candidates, cand)
        out = Path(args.keep) if args.keep else Path(folder) / 'report'
        timings = {}
        started = time.perf_counter()
        build_report(export, out, candidates=cand, timings=timings, progress=not args.no_progress)
        total = time.perf_counter() - started
    for step, seconds in timings.items():
        print(f'  {step:<46s} {seconds:8.2f} s')
    mixed = timings.get('mixed logit in R (background or not)', 0.0)
    overlapped = 'mixed logit' not in timings
    print(f'{"build_report total":<48s} {total:8.2f} s  (mixed logit {mixed:.2f} s in R, '
          + ('in the background while the learning models were fitted; "waiting for mixed logit" is the part '
             'that did not overlap)' if overlapped else 'in turn: no core was free)'))
    print('PASS' if total < 30 else 'SLOW', '(target < 30 s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
