"""Figures of a sweep's summary: a measure against one grid field, one line per composition."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ['plot_summary']


def plot_summary(summary: pd.DataFrame, out_path, x: str = 'selectors_per_group', y: str = 'late_ai_share',
                 by=None) -> Path:
    """PNG of `y` against `x`, the mean over the cells that differ only in the other fields (e.g. seeds),
    with ±1.96 standard errors over those cells; one line per value of the `by` columns (default: every
    grid column with more than one value except x and seed). Returns the path written."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    for column in (x, y):
        if column not in summary.columns:
            raise ValueError(f'summary has no column {column!r}; columns: {list(summary.columns)}')
    if by is None:
        first = summary.columns.get_loc('n_groups') if 'n_groups' in summary.columns else len(summary.columns)
        grid_columns = [c for c in summary.columns[:first] if c not in ('cell', 'cell_id', x, 'seed')]
        by = [c for c in grid_columns if summary[c].nunique() > 1 and c not in ('groups', 'selectors_per_group')]
    by = list(by)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lines = summary.groupby(by, sort=True) if by else [((), summary)]
    for key, part in lines:
        stats = part.groupby(x)[y].agg(['mean', 'std', 'count']).sort_index()
        se = (stats['std'] / np.sqrt(stats['count'])).fillna(0.0)
        label = ', '.join(f'{name}={value}' for name, value in zip(by, key if isinstance(key, tuple) else (key,)))
        ax.errorbar(stats.index, stats['mean'], yerr=1.96 * se, marker='o', capsize=3, label=label or y)
    values = pd.to_numeric(summary[x], errors='coerce')
    if values.notna().all() and values.min() > 0 and values.max() / values.min() >= 20:
        ax.set_xscale('log')
    if 'chance_ai_share' in summary.columns and y.endswith('ai_share') and summary['chance_ai_share'].nunique() == 1:
        ax.axhline(summary['chance_ai_share'].iloc[0], color='grey', linestyle=':', label='chance')
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=150)
    plt.close(fig)
    return out_path
