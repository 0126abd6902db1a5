"""Command line: ``python -m analysis report ...`` and ``python -m analysis simulate ...``.

Bad input (a missing column, an empty or binary file, a wrong export) prints one line
``error: <file>: <problem>`` on stderr and exits with status 2, never a traceback. A valid file with too
few selectors for some statistics still gets its report (exit 0); each withheld statistic is one line
``warning: withheld: ...`` on stderr and listed at the top of the report.
"""
from __future__ import annotations

import argparse
import sys

from .io import TREATMENTS, ExportError, write_export

__all__ = ['main', 'build_parser']


def _pair(text: str) -> tuple[float, float]:
    try:
        mean, sd = (float(x) for x in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected MEAN,SD (e.g. 19.1,3.4), got {text!r}') from None
    return mean, sd


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition('=')
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected NAME=VALUE (e.g. alpha=0.3), got {text!r}') from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m analysis',
        description='Analyse partner_selection / trust_game exports, or simulate a synthetic export.')
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('power', add_help=False,
                        help='power of the key tests for a planned design, by simulation '
                             '(python -m analysis power --help)')

    report = commands.add_parser(
        'report', help='write DIR/report.html with figures (SVG + PNG), tables as CSV and results.json',
        description='Read a decisions export (partner_selection custom_export) or a trust_game export, run all '
                    'analyses and write DIR/report.html, its figures (SVG and 300-dpi PNG), every table as CSV and '
                    'the headline estimates as DIR/results.json (keys: docs/analysis.md, "Report outputs").')
    report.add_argument('export', metavar='EXPORT.csv', nargs='+',
                        help='partner_selection decisions export (partner_selection_custom.csv) or trust_game export; '
                             'several files (one per server, docs/hosting.md) are checked and read as one')
    report.add_argument('--candidates', metavar='CANDIDATES.csv', nargs='+',
                        help='partner_selection candidates export (custom_export_candidates): adds message '
                             'length and message-return analyses')
    report.add_argument('--ai-calls', metavar='AI_CALLS.csv', nargs='+',
                        help='AI-calls export (custom_export_ai_calls, or a population run\'s ai_calls.csv): adds '
                             'the AI agents\' fallback shares (CIs clustered by agent), reasons, latency and tokens')
    report.add_argument('--out', metavar='DIR', required=True, help='output folder (created if missing)')
    report.add_argument('--n-boot', type=int, default=1000,
                        help='bootstrap replicates for the AI-choice share CIs (default 1000)')
    report.add_argument('--curve-boot', type=int, default=200,
                        help='bootstrap replicates for the learning-curve CIs and differences (default 200)')
    report.add_argument('--curve-perm', type=int, default=199,
                        help='selector permutations of the flat-versus-learning test per treatment (default 199; '
                             '0 = select by BIC alone)')
    report.add_argument('--k-rounds', type=int, default=3,
                        help='rounds in the early and the late window of the treatment contrasts (default 3)')
    report.add_argument('--mixed', choices=('auto', 'on', 'off'), default='auto',
                        help='mixed-effects logit (slow on big data): auto = only up to 25000 choices (default)')
    report.add_argument('--selectors', choices=('auto', 'human', 'ai', 'all'), default='auto',
                        help='whose choices the estimates use: auto = the human selectors where human and AI '
                             'selectors share a session, else everyone (default); all = both kinds pooled')
    report.add_argument('--per-selector', action='store_true',
                        help='also fit the learning models per selector (adds ~30 s for 975 selectors)')
    report.add_argument('--starts', type=int, default=5, help='optimizer starts per learning-model fit (default 5)')
    report.add_argument('--seed', type=int, default=0, help='seed for bootstraps and random starts (default 0)')
    report.add_argument('--no-progress', action='store_true', help='hide the progress bars')

    sim = commands.add_parser(
        'simulate', help='write a synthetic decisions export (and candidates export)',
        description='Simulate a session from a learning model and write it in the export schema.')
    sim.add_argument('--out', metavar='FILE', required=True, help='decisions export to write (CSV)')
    sim.add_argument('--candidates-out', metavar='FILE', help='also write the candidates export here')
    sim.add_argument('--model', default='rescorla_wagner',
                     choices=('random', 'static', 'rescorla_wagner', 'ewa', 'curve'),
                     help='choice model (default rescorla_wagner); curve = p(t) learning curve')
    sim.add_argument('--param', type=_param, action='append', default=[], metavar='NAME=VALUE',
                     help='model parameter, repeatable (rescorla_wagner: alpha, beta, bias; ewa: phi, delta, rho, '
                          'beta, bias; static: kind_preference, bias; curve: p0, p_inf, k); unset ones take the '
                          "model's default; with --model curve, TREATMENT.NAME=VALUE sets it for one treatment "
                          '(e.g. disclosed.p0=0.25)')
    sim.add_argument('--treatments', default=','.join(TREATMENTS),
                     help=f'comma-separated treatments assigned to groups in rotation, from {", ".join(TREATMENTS)} '
                          '(default all three)')
    sim.add_argument('--groups', type=int, default=3, help='number of mini-societies (default 3)')
    sim.add_argument('--selectors', type=int, default=3, help='selectors per group, S (default 3)')
    sim.add_argument('--human', type=int, default=2, help='human candidates per group, H (default 2)')
    sim.add_argument('--ai', type=int, default=2, help='AI candidates per group, A (default 2)')
    sim.add_argument('--rounds', type=int, default=10, help='rounds (default 10)')
    sim.add_argument('--endowment', type=int, default=10, help='points sent by a selector (default 10)')
    sim.add_argument('--multiplier', type=int, default=3, help='multiplier (default 3)')
    sim.add_argument('--ai-return', type=_pair, default=(19.1, 3.4), metavar='MEAN,SD',
                     help='AI return, points out of 30 received (default 19.1,3.4)')
    sim.add_argument('--human-return', type=_pair, default=(11.4, 6.5), metavar='MEAN,SD',
                     help='human return, points out of 30 received (default 11.4,6.5)')
    sim.add_argument('--message-return-slope', type=float, default=0.0,
                     help='extra return share per 100 message characters (default 0)')
    sim.add_argument('--timeout-rate', type=float, default=0.0,
                     help='probability a selector times out on the choice page (default 0)')
    sim.add_argument('--no-beliefs', action='store_true', help='do not elicit beliefs in hidden/false_label')
    sim.add_argument('--belief-accuracy', type=float, default=0.6,
                     help='probability each belief guess is right (default 0.6)')
    sim.add_argument('--session-code', default='sim00001', help='session_code written in the export')
    sim.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    return parser


def _one_export(paths: list, out_dir) -> str:
    """One path as given; several (the same export from each server) are checked as one by
    analysis.io.read_exports and concatenated into OUT/merged_<kind>.csv, the file the report reads."""
    if len(paths) == 1:
        return paths[0]
    import csv
    from pathlib import Path

    from .io import read_exports
    kind, _ = read_exports(paths)
    target = Path(out_dir) / f'merged_{kind}.csv'
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, 'w', newline='', encoding='utf-8') as out:
        writer = csv.writer(out)
        for i, path in enumerate(paths):
            with open(path, newline='', encoding='utf-8-sig') as handle:
                rows = list(csv.reader(handle))
            writer.writerows(rows if i == 0 else rows[1:])  # the headers agree (read_exports checked)
    return str(target)


def _report(args) -> int:
    from .io import load_ai_calls, load_candidates, read_export
    for name in ('n_boot', 'curve_boot', 'curve_perm', 'starts'):
        if getattr(args, name) < 0:
            raise ValueError(f'--{name.replace("_", "-")} must be 0 or more, got {getattr(args, name)}')
    if args.k_rounds < 1:
        raise ValueError(f'--k-rounds must be 1 or more, got {args.k_rounds}')
    # Check the files before importing matplotlib and statsmodels: a bad file fails in a second.
    args.export = _one_export(args.export, args.out)
    read_export(args.export)
    if args.candidates:
        args.candidates = _one_export(args.candidates, args.out)
        load_candidates(args.candidates)
    if args.ai_calls:
        args.ai_calls = _one_export(args.ai_calls, args.out)
        load_ai_calls(args.ai_calls)
    import warnings

    from .report import WithheldStatistic, build_report
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', WithheldStatistic)
        path = build_report(args.export, args.out, candidates=args.candidates, ai_calls=args.ai_calls,
                            n_boot=args.n_boot,
                            curve_boot=args.curve_boot, mixed=args.mixed, per_selector=args.per_selector,
                            n_starts=args.starts, seed=args.seed, progress=not args.no_progress,
                            k_rounds=args.k_rounds, curve_perm=args.curve_perm, selectors=args.selectors)
    for warning in caught:
        if issubclass(warning.category, WithheldStatistic):
            print(f'warning: withheld: {warning.message}', file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    print(f'report written: {path}')
    return 0


def _simulate(args) -> int:
    from .simulate import simulate_session
    params = {}
    for name, value in args.param:
        if args.model == 'curve' and '.' in name:  # per treatment: disclosed.p0=0.2
            treatment, name = name.split('.', 1)
            params.setdefault(treatment, {})[name] = value
        else:
            params[name] = value
    decisions, candidates = simulate_session(
        args.model, params, treatments=[t.strip() for t in args.treatments.split(',') if t.strip()],
        n_groups=args.groups, n_selectors=args.selectors, n_human=args.human, n_ai=args.ai, n_rounds=args.rounds,
        endowment=args.endowment, multiplier=args.multiplier, ai_return=args.ai_return,
        human_return=args.human_return, message_return_slope=args.message_return_slope,
        timeout_rate=args.timeout_rate, elicit_beliefs=not args.no_beliefs, belief_accuracy=args.belief_accuracy,
        session_code=args.session_code, seed=args.seed)
    write_export(decisions, args.out)
    print(f'decisions written: {args.out} ({len(decisions)} rows)')
    if args.candidates_out:
        write_export(candidates, args.candidates_out)
        print(f'candidates written: {args.candidates_out} ({len(candidates)} rows)')
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['power']:  # its own options and help: analysis/power.py
        from .power import main as power_main

        return power_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return _report(args) if args.command == 'report' else _simulate(args)
    except ExportError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        # Bad option values (unknown treatment, parameter) and unwritable paths: a message, not a traceback.
        print(f'error: {exc}', file=sys.stderr)
        return 2
