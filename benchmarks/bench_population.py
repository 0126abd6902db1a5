"""Time the headless population engine: agent-decisions per second, and how time grows with society size.

    python benchmarks/bench_population.py [--selectors 10000] [--rounds 20] [--policy rescorla_wagner]
                                          [--rules-selectors 2000] [--export]

1. The target: `--selectors` (default 10,000) Rescorla–Wagner selectors × `--rounds` (20) with the vectorised
   engine (population.fast), in groups of 3 (3,334 groups, 2 human-like + 2 AI candidates each), of 100
   and as one society; the issue asks for under 10 s on this 2-core machine.
2. Scaling: the same engine at 1,000 … 40,000 selectors (groups of 100): seconds and decisions/s per size
   (linear in selectors × rounds means a flat decisions/s).
3. The rules engine (population.engine.run: every call through game_logic.round_engine, as the app) at
   `--rules-selectors` selectors, to show what calling round_engine per selector costs.
4. With --export: the time to build and write the decisions / candidates CSVs of the target run (not part
   of the engine's time: a sweep cell need not write them).

Prints one line per measurement and the machine's core count; docs/population.md quotes the figures.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from population import from_mapping, run, run_fast, write_exports  # noqa: E402


def timed(engine, config) -> tuple[float, object]:
    started = time.perf_counter()
    result = engine(config)
    return time.perf_counter() - started, result


def line(label, config, seconds):
    decisions = config.n_selectors * config.rounds
    print(f'{label:<44} {config.n_selectors:>7} selectors x {config.rounds:>3} rounds  {seconds:7.2f} s  '
          f'{decisions / seconds:>10,.0f} decisions/s', flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--selectors', type=int, default=10_000)
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--policy', default='rescorla_wagner', help='selector policy (random, static, '
                                                                    'rescorla_wagner, ewa)')
    parser.add_argument('--rules-selectors', type=int, default=2_000, help='selectors for the rules-engine line')
    parser.add_argument('--export', action='store_true', help='also time writing the target run\'s CSVs')
    args = parser.parse_args(argv)
    print(f'cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}')

    def config(groups, per_group, rounds=args.rounds, **extra):
        return from_mapping(dict(groups=groups, selectors_per_group=per_group, rounds=rounds,
                                 selector_policy=args.policy, identity='disclosed', **extra))

    print('-- target (vectorised engine, population.fast)')
    target = None
    for per_group in (3, 100, args.selectors):
        groups = -(-args.selectors // per_group)
        cfg = config(groups, per_group)
        seconds, result = timed(run_fast, cfg)
        line(f'groups of {per_group} ({groups} groups)', cfg, seconds)
        if per_group == 100:
            target = result
    cfg = config(-(-args.selectors // 3), 3, treatments='hidden', elicit_beliefs=True)
    seconds, _ = timed(run_fast, cfg)
    line('groups of 3, hidden, beliefs elicited', cfg, seconds)

    print('-- scaling with society size (vectorised, groups of 100)')
    for total in (1_000, 5_000, 10_000, 20_000, 40_000):
        cfg = config(total // 100, 100)
        seconds, _ = timed(run_fast, cfg)
        line(f'{total} selectors', cfg, seconds)
    print('-- scaling with rounds (vectorised, 10,000 selectors in groups of 100)')
    for rounds in (10, 20, 40, 80):
        cfg = config(100, 100, rounds=rounds)
        seconds, _ = timed(run_fast, cfg)
        line(f'{rounds} rounds', cfg, seconds)

    print('-- rules engine (population.engine.run: game_logic.round_engine per group and selector)')
    for per_group in (3, 100):
        groups = max(1, args.rules_selectors // per_group)
        cfg = config(groups, per_group)
        seconds, _ = timed(run, cfg)
        line(f'groups of {per_group} ({groups} groups)', cfg, seconds)

    if args.export and target is not None:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            write_exports(target, folder)
            print(f'-- export of the target run (groups of 100): {time.perf_counter() - started:.1f} s '
                  f'({sum(f.stat().st_size for f in Path(folder).iterdir()) / 1e6:.0f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
