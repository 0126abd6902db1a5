"""Share of selectors choosing an AI candidate per round and treatment, against the chance level.

The chance level is the mean ``ai_share_offered`` (AI cards among those offered): a selector picking
cards at random chooses an AI that often. Confidence intervals come from a participant-clustered
bootstrap: selectors (with all their rounds) are resampled within each treatment, so the repeated
choices of one selector are not treated as independent.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ['ai_choice_share']


def ai_choice_share(data: pd.DataFrame, round: str = 'round', treatment: str = 'treatment',
                    selector: str = 'selector_id', dv: str = 'chose_ai', chance: str = 'ai_share_offered',
                    n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """AI-choice share per round × treatment with clustered bootstrap CIs.

    Parameters
    ----------
    data : long DataFrame, one row per selector × round; rows whose ``dv`` is empty (no choice) are
        left out of shares (pass :func:`analysis.io.fit_sample` output to make that explicit).
    n_boot : bootstrap replicates (selectors resampled with replacement within treatment); 0 = no CIs.
    seed : seed of the bootstrap, so a report is reproducible.

    Returns
    -------
    DataFrame with columns ``treatment``, ``round``, ``n_selectors`` (with a choice that round),
    ``n_ai_chosen``, ``share_ai``, ``chance`` (mean ai_share_offered), ``ci_low``, ``ci_high``,
    ``above_chance`` (True when the CI lies above the chance level, False when below, NaN otherwise).
    """
    rng = np.random.default_rng(seed)
    data = data[data[dv].notna()]
    alpha = (1 - ci) / 2
    tables = []
    for name, part in data.groupby(treatment, sort=True):
        n = part.pivot_table(index=selector, columns=round, values=dv, aggfunc='size', fill_value=0)
        ai = part.pivot_table(index=selector, columns=round, values=dv, aggfunc='sum', fill_value=0).reindex_like(n)
        n_mat, ai_mat = n.to_numpy(float), ai.fillna(0).to_numpy(float)
        counts, chosen = n_mat.sum(axis=0), ai_mat.sum(axis=0)
        table = pd.DataFrame({
            'treatment': name,
            'round': n.columns.astype(int),
            'n_selectors': counts.astype(int),
            'n_ai_chosen': chosen.astype(int),
            'share_ai': chosen / counts,
            'chance': part.groupby(round)[chance].mean().reindex(n.columns).to_numpy(),
        })
        if n_boot:
            n_sel = n_mat.shape[0]
            # A multinomial weight per selector is the same as resampling selectors with replacement.
            weights = rng.multinomial(n_sel, np.full(n_sel, 1.0 / n_sel), size=n_boot)
            with np.errstate(invalid='ignore', divide='ignore'):
                shares = (weights @ ai_mat) / (weights @ n_mat)
            table['ci_low'] = np.nanquantile(shares, alpha, axis=0)
            table['ci_high'] = np.nanquantile(shares, 1 - alpha, axis=0)
        else:
            table['ci_low'] = np.nan
            table['ci_high'] = np.nan
        tables.append(table)
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=['treatment', 'round', 'n_selectors', 'n_ai_chosen', 'share_ai', 'chance', 'ci_low', 'ci_high'])
    above = pd.Series(np.nan, index=out.index, dtype=object)
    above[out['ci_low'] > out['chance']] = True
    above[out['ci_high'] < out['chance']] = False
    out['above_chance'] = above
    return out
