"""Sweeps: one population run per cell of a grid, cells in parallel processes, split over machines by shard.

A grid file (TOML or JSON) has three tables (docs/population.md):

    [sweep]                      # how the sweep runs (all optional)
    engine = "fast"              # "fast" (population.fast) or "rules" (every call through round_engine)
    early_rounds = 3             # the summary's early / late AI share: the first / last k rounds
    late_rounds = 3
    write_exports = false        # also write each cell's decisions / candidates / config CSVs
    curve_permutations = 0       # selector permutations of analysis' flat-vs-learning test (0: BIC alone)

    [base]                       # fields of every cell: session-config and engine fields (population.config)
    groups = 10

    [grid]                       # one list per field; cells are every combination, in file order
    selectors_per_group = [1, 10, 100]
    ai_share = [0.25, 0.5]       # with num_candidates (base or grid): num_ai_candidates = round(share × n)
    ai_presets = [["prosocial_ai"], ["prosocial_ai", "human_like"]]
    identity = ["hidden", "disclosed"]
    selector_policy = ["rescorla_wagner", "random"]
    rounds = [10, 40]
    seed = [1, 2, 3]
    "groups+selectors_per_group" = [[1000, 1], [1, 1000]]   # fields joined by + vary together

Cells are numbered 0.. in the grid's order (the last field varies fastest); `--shard i/N` runs the cells with
number % N == i − 1. A cell is finished when OUT/cells/<cell>/summary.json exists: a second run skips it
(resume). A cell whose run fails writes error.txt instead and is run again next time. After every run
OUT/summary.csv is rebuilt from every finished cell in OUT (one row per cell, in cell order), so shards run
into one folder end with the summary of the whole sweep; shards run into separate folders are merged by
concatenating their summary.csv files (`python -m population merge`). OUT/timings.csv has the seconds
per cell (kept out of the summary so that reruns compare equal).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ai_partners.learning import AI

from .config import from_mapping
from .engine import run, write_exports
from .fast import FastResult, run_fast
from .llm_agents import llm_stats

__all__ = ['load_grid', 'grid_cells', 'parse_shard', 'run_sweep', 'summarize', 'merge_summaries',
           'SWEEP_DEFAULTS']

SWEEP_DEFAULTS = dict(engine='fast', early_rounds=3, late_rounds=3, write_exports=False, curve_permutations=0)


def load_grid(path) -> dict:
    """The grid file as {'sweep': {...}, 'base': {...}, 'grid': {...}}; TOML unless the name ends in .json."""
    path = Path(path)
    text = path.read_text(encoding='utf-8')
    if path.suffix.lower() == '.json':
        data = json.loads(text)
    else:
        import tomllib
        data = tomllib.loads(text)
    unknown = sorted(set(data) - {'sweep', 'base', 'grid'})
    if unknown:
        raise ValueError(f'{path}: unknown table(s) {unknown}; a grid file has [sweep], [base], [grid]')
    sweep = dict(SWEEP_DEFAULTS, **data.get('sweep', {}))
    bad = sorted(set(sweep) - set(SWEEP_DEFAULTS))
    if bad:
        raise ValueError(f'{path}: unknown [sweep] key(s) {bad}; known: {sorted(SWEEP_DEFAULTS)}')
    if sweep['engine'] not in ('fast', 'rules'):
        raise ValueError(f"{path}: [sweep] engine must be 'fast' or 'rules', got {sweep['engine']!r}")
    grid = data.get('grid', {})
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f'{path}: [grid] {name} must be a non-empty list, got {values!r}')
    return dict(sweep=sweep, base=dict(data.get('base', {})), grid=grid)


def grid_cells(grid: dict) -> list:
    """[(number, cell_id, values)] for every combination of the grid's lists, over the base fields. Every
    cell's config is checked here, so a bad grid fails before anything runs."""
    names = list(grid['grid'])
    cells = []
    for number, combo in enumerate(itertools.product(*(grid['grid'][n] for n in names))):
        values = dict(grid['base'])
        for name, value in zip(names, combo):
            if '+' in name:  # fields that vary together: "groups+selectors_per_group" = [[1000, 1], [1, 1000]]
                fields = name.split('+')
                if not isinstance(value, list) or len(value) != len(fields):
                    raise ValueError(f'[grid] {name}: every entry must be a list of {len(fields)} values, '
                                     f'got {value!r}')
                values.update(zip(fields, value))
            else:
                values[name] = value
        config = from_mapping(values)
        if config.uses_llm and grid.get('sweep', SWEEP_DEFAULTS)['engine'] == 'fast':
            raise ValueError(f'cell {number}: LLM agents need engine = "rules" in [sweep] (the fast engine '
                             'has no LLM agents)')
        digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
        cells.append((number, f'{number:05d}-{digest}', values))
    return cells


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' -> (i, N), 1 <= i <= N; None -> (1, 1)."""
    if not text:
        return 1, 1
    try:
        i, n = (int(x) for x in text.split('/'))
    except ValueError:
        raise ValueError(f'--shard must be i/N (e.g. 2/8), got {text!r}') from None
    if not 1 <= i <= n:
        raise ValueError(f'--shard i/N needs 1 <= i <= N, got {text!r}')
    return i, n


# ---------------------------------------------------------------------------------------------------
# One cell


def choice_table(result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(choices, candidates) of a run, the few columns the summary reads: choices with treatment, round,
    selector_id, chose_ai, selector_payoff; candidates with kind, candidate_payoff. From the arrays of a
    FastResult (fast) or the export frames of a Result."""
    if isinstance(result, FastResult):
        config = result.config
        R, S, C = result.order.shape
        per_group = config.selectors_per_group
        group_of = np.arange(S) // per_group
        chosen = result.chosen
        choices = pd.DataFrame(dict(
            treatment=np.tile(result.treatment[group_of], R), round=np.repeat(np.arange(1, R + 1), S),
            selector_id=np.tile(np.arange(S), R), chose_ai=(result.candidate_kind[chosen] == AI).astype(float).ravel(),
            selector_payoff=(config.session.endowment - result.sent + result.returned).ravel().astype(float)))
        received = np.zeros((R, config.groups, C))
        returned = np.zeros((R, config.groups, C))
        r_index = np.repeat(np.arange(R), S)
        np.add.at(received, (r_index, np.tile(group_of, R), chosen.ravel()),
                  result.sent.ravel() * config.session.multiplier)
        np.add.at(returned, (r_index, np.tile(group_of, R), chosen.ravel()), result.returned.ravel())
        payoff = config.session.candidate_base_pay + received - returned
        kinds = np.where(result.candidate_kind == AI, 'ai', 'human')
        candidates = pd.DataFrame(dict(kind=np.tile(kinds, R * config.groups), candidate_payoff=payoff.ravel()))
        return choices, candidates
    decisions, candidates = result.decisions_frame(), result.candidates_frame()
    choices = decisions[['treatment', 'round', 'selector_id', 'chose_ai', 'selector_payoff']].copy()
    choices['chose_ai'] = pd.to_numeric(choices['chose_ai'], errors='coerce')
    return choices, candidates[['kind', 'candidate_payoff']].astype({'candidate_payoff': float})


def summarize(result, early_rounds: int = 3, late_rounds: int = 3, curve_permutations: int = 0) -> dict:
    """One cell's summary row (docs/population.md, "Summary columns")."""
    config = result.config
    choices, candidates = choice_table(result)
    c = config.session
    R = config.rounds
    early = choices['round'] <= early_rounds
    late = choices['round'] > R - late_rounds
    row = dict(
        n_groups=config.groups, n_selectors=config.n_selectors, n_candidates=c.num_candidates,
        n_decisions=len(choices), chance_ai_share=c.num_ai_candidates / c.num_candidates,
        early_ai_share=float(choices.loc[early, 'chose_ai'].mean()),
        late_ai_share=float(choices.loc[late, 'chose_ai'].mean()),
        ai_choice_share=float(choices['chose_ai'].mean()),
        selector_payoff_mean=float(choices['selector_payoff'].mean()),
        ai_candidate_payoff_mean=float(candidates.loc[candidates['kind'] == 'ai', 'candidate_payoff'].mean())
        if c.num_ai_candidates else np.nan,
        human_candidate_payoff_mean=float(candidates.loc[candidates['kind'] == 'human', 'candidate_payoff'].mean())
        if c.num_human_candidates else np.nan,
    )
    row.update(_curve(choices, curve_permutations))
    # the LLM agents' calls (zeros, and no p95, for a cell without them)
    row.update(llm_stats(getattr(result, 'ai_calls', [])))
    return row


_CURVE_PARAMS = ('p0', 'p_inf', 'k')


def _curve(choices: pd.DataFrame, n_perm: int) -> dict:
    """analysis.learning_curve's fit of the cell's choices (all its treatments as one: a cell is meant to
    have one identity): estimate and CI per parameter, the selected model; an error is recorded, not raised."""
    out = {f'curve_{p}{s}': np.nan for p in _CURVE_PARAMS for s in ('', '_ci_low', '_ci_high')}
    out.update(curve_selected_model='', curve_error='')
    try:
        from analysis.learning_curve import fit_learning_curves
        data = choices.assign(treatment='all')
        params, fits = fit_learning_curves(data, n_perm=n_perm)
        for _, p in params.iterrows():
            name = p['parameter']
            out[f'curve_{name}'] = float(p['estimate'])
            out[f'curve_{name}_ci_low'] = float(p['ci_low'])
            out[f'curve_{name}_ci_high'] = float(p['ci_high'])
        out['curve_selected_model'] = str(fits['selected_model'].iloc[0])
    except Exception as exc:  # another module's failure must not lose the cell
        out['curve_error'] = f'{type(exc).__name__}: {exc}'.replace('\n', ' ')[:300]
    return out


def run_cell(out_dir: str, cell: tuple, sweep: dict) -> dict:
    """Run one cell (if not finished) and write its summary.json; returns {'cell', 'status', 'seconds'}."""
    number, cell_id, values = cell
    folder = Path(out_dir) / 'cells' / cell_id
    if (folder / 'summary.json').exists():
        return dict(cell=cell_id, status='skipped', seconds=0.0)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        config = from_mapping(dict(values, name=values.get('name', f'sweep-{cell_id}')))
        result = run_fast(config) if sweep['engine'] == 'fast' else run(config)
        if sweep['write_exports']:
            write_exports(result, folder)
        summary = summarize(result, sweep['early_rounds'], sweep['late_rounds'], sweep['curve_permutations'])
    except Exception:
        (folder / 'error.txt').write_text(traceback.format_exc())
        return dict(cell=cell_id, status='error', seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    record = dict(cell=number, cell_id=cell_id, values=values, summary=summary, seconds=seconds)
    tmp = folder / 'summary.json.tmp'
    tmp.write_text(json.dumps(record, default=_json_default, indent=1))
    os.replace(tmp, folder / 'summary.json')  # a cell counts as finished only once its summary is whole
    (folder / 'error.txt').unlink(missing_ok=True)
    return dict(cell=cell_id, status='done', seconds=seconds)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f'not JSON: {value!r}')


def _cell_value(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def summary_frame(out_dir, cells: list) -> pd.DataFrame:
    """One row per finished cell of `cells` in out_dir: cell, cell_id, the grid's values, the summary."""
    rows = []
    for number, cell_id, values in cells:
        path = Path(out_dir) / 'cells' / cell_id / 'summary.json'
        if path.exists():
            record = json.loads(path.read_text())
            row = dict(cell=number, cell_id=cell_id, **{k: _cell_value(v) for k, v in values.items()})
            clash = sorted(set(row) & set(record['summary']))
            if clash:
                raise ValueError(f'grid field(s) {clash} clash with summary columns of the same name')
            rows.append(dict(row, **record['summary']))
    return pd.DataFrame(rows)


def run_sweep(grid_path, out_dir, shard: str | None = None, jobs: int = 1, progress=print) -> pd.DataFrame:
    """Run this shard's unfinished cells (in `jobs` processes) and rebuild OUT/summary.csv; returns it."""
    grid = load_grid(grid_path)
    cells = grid_cells(grid)
    i, n = parse_shard(shard)
    mine = [cell for cell in cells if cell[0] % n == i - 1]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if jobs > 1 and len(mine) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            reports = list(pool.map(run_cell, [str(out)] * len(mine), mine, [grid['sweep']] * len(mine)))
    else:
        reports = [run_cell(str(out), cell, grid['sweep']) for cell in mine]
    for report in reports:
        if progress:
            progress(f"cell {report['cell']}: {report['status']} ({report['seconds']:.2f} s)")
    timings = out / 'timings.csv'
    new = pd.DataFrame([r for r in reports if r['status'] == 'done'])
    if not new.empty:
        new.to_csv(timings, mode='a', header=not timings.exists(), index=False)
    summary = summary_frame(out, cells)
    summary.to_csv(out / 'summary.csv', index=False)
    errors = [r['cell'] for r in reports if r['status'] == 'error']
    if errors and progress:
        progress(f'{len(errors)} cell(s) failed (their error.txt says why; a rerun retries them): {errors}')
    return summary


def merge_summaries(paths, out_path=None) -> pd.DataFrame:
    """Shards' summary.csv files as one table in cell order (a cell in several files is kept once)."""
    frames = [pd.read_csv(p) for p in paths]
    merged = pd.concat(frames, ignore_index=True).drop_duplicates('cell_id').sort_values('cell')
    merged = merged.reset_index(drop=True)
    if out_path:
        merged.to_csv(out_path, index=False)
    return merged
