"""Command line: `python -m population run ...`, `sweep GRID ...`, `merge ...`, `plot summary.csv ...`.

A bad config or grid prints one line `error: <problem>` on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from game_logic.session_config import ConfigError

__all__ = ['main', 'build_parser']


def _setting(text: str) -> tuple[str, object]:
    name, sep, value = text.partition('=')
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f'expected FIELD=VALUE (e.g. identity=hidden), got {text!r}')
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # plain text
    return name.strip(), parsed


def _load_config_file(path) -> dict:
    path = Path(path)
    if path.suffix.lower() == '.json':
        return json.loads(path.read_text(encoding='utf-8'))
    import tomllib
    return tomllib.loads(path.read_text(encoding='utf-8'))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m population',
                                     description='Headless partner-selection populations on the app\'s round rules.')
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('run', help='play one run and write its exports (decisions, candidates, config)')
    run.add_argument('--config', metavar='FILE', help='TOML or JSON file of session-config and engine fields')
    run.add_argument('--set', metavar='FIELD=VALUE', type=_setting, action='append', default=[],
                     help='one field (JSON value, else text), after --config; repeatable')
    run.add_argument('--groups', type=int, help='mini-societies (groups)')
    run.add_argument('--selectors', type=int, help='selectors per group (the society size)')
    run.add_argument('--human', type=int, help='human-like candidates per group (num_human_candidates)')
    run.add_argument('--ai', type=int, help='AI candidates per group (num_ai_candidates)')
    run.add_argument('--rounds', type=int, help='rounds')
    run.add_argument('--identity', help='hidden, disclosed or false_label')
    run.add_argument('--policy', help='selector policy: random, static, rescorla_wagner, ewa, llm')
    run.add_argument('--seed', type=int, help='seed of the selectors\' choices')
    run.add_argument('--engine', choices=('rules', 'fast'), default='rules',
                     help='rules: every call through game_logic.round_engine (default); fast: the numpy twin')
    run.add_argument('--out', required=True, metavar='DIR', help='output folder (created if missing)')
    sweep = commands.add_parser('sweep', help='run a grid of cells (resumable, shardable)')
    sweep.add_argument('grid', metavar='GRID.toml|json')
    sweep.add_argument('--out', required=True, metavar='DIR')
    sweep.add_argument('--shard', metavar='i/N', help='run only cells with number %% N == i-1')
    sweep.add_argument('--jobs', type=int, default=1, help='cells in parallel processes (default 1)')
    plot = commands.add_parser('plot', help='PNG of a summary measure against a grid field, a line per composition')
    plot.add_argument('summary', metavar='summary.csv')
    plot.add_argument('--x', default='selectors_per_group', help='x axis column (default selectors_per_group)')
    plot.add_argument('--y', default='late_ai_share', help='y axis column (default late_ai_share)')
    plot.add_argument('--by', help='comma list of columns, one line per value (default: the varied grid fields)')
    plot.add_argument('--out', required=True, metavar='FILE.png')
    merge = commands.add_parser('merge', help="merge shards' summary.csv files into one (cell order)")
    merge.add_argument('summaries', nargs='+', metavar='summary.csv')
    merge.add_argument('--out', required=True, metavar='FILE')
    return parser


_FLAGS = dict(groups='groups', selectors='selectors_per_group', human='num_human_candidates',
              ai='num_ai_candidates', rounds='rounds', identity='identity', policy='selector_policy', seed='seed')


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from . import sweep as sweeps
    try:
        if args.command == 'run':
            from .config import from_mapping
            from .engine import run, write_exports
            from .fast import run_fast
            values = _load_config_file(args.config) if args.config else {}
            values.update(dict(args.set))
            values.update({field: getattr(args, flag) for flag, field in _FLAGS.items()
                           if getattr(args, flag) is not None})
            config = from_mapping(values)
            started = time.perf_counter()
            result = run_fast(config) if args.engine == 'fast' else run(config)
            played = time.perf_counter() - started
            paths = write_exports(result, args.out)
            decisions = config.n_selectors * config.rounds
            print(f'{decisions} decisions ({config.n_selectors} selectors x {config.rounds} rounds) in {played:.2f} s '
                  f'({args.engine} engine)')
            for name, path in paths.items():
                print(f'{name}: {path}')
        elif args.command == 'sweep':
            summary = sweeps.run_sweep(args.grid, args.out, args.shard, args.jobs)
            print(f'{len(summary)} finished cell(s): {Path(args.out) / "summary.csv"}')
        elif args.command == 'plot':
            import pandas as pd

            from .figures import plot_summary
            by = [c.strip() for c in args.by.split(',') if c.strip()] if args.by else None
            print(plot_summary(pd.read_csv(args.summary), args.out, args.x, args.y, by))
        else:
            merged = sweeps.merge_summaries(args.summaries, args.out)
            print(f'{len(merged)} cell(s): {args.out}')
    except (ConfigError, ValueError, OSError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0
