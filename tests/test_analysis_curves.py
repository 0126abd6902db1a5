"""AI-choice share by round: counts, chance level, and selector-clustered bootstrap CIs."""
import numpy as np
import pandas as pd

from analysis.curves import ai_choice_share


def _choices(pattern, treatment='disclosed', share_offered=0.5):
    """pattern: {selector: [chose_ai per round]} -> long DataFrame."""
    rows = [dict(selector_id=s, treatment=treatment, round=r + 1, chose_ai=c, ai_share_offered=share_offered)
            for s, choices in pattern.items() for r, c in enumerate(choices)]
    return pd.DataFrame(rows)


def test_share_and_chance_are_counted_per_round_and_treatment():
    data = pd.concat([
        _choices({'a': [1, 1, 0], 'b': [0, 1, np.nan], 'c': [0, 1, 1]}),
        _choices({'d': [1, 0, 0]}, treatment='hidden', share_offered=0.25),
    ])
    table = ai_choice_share(data, n_boot=0).set_index(['treatment', 'round'])
    assert table.loc[('disclosed', 1), 'share_ai'] == 1 / 3
    assert table.loc[('disclosed', 3), 'n_selectors'] == 2  # the empty choice is left out
    assert table.loc[('disclosed', 3), 'share_ai'] == 0.5
    assert table.loc[('hidden', 1), 'chance'] == 0.25
    assert table.loc[('hidden', 2), 'share_ai'] == 0.0


def test_bootstrap_is_seeded_and_brackets_the_share():
    rng = np.random.default_rng(0)
    data = _choices({f's{i}': list(rng.integers(0, 2, 5)) for i in range(40)})
    first = ai_choice_share(data, n_boot=300, seed=3)
    again = ai_choice_share(data, n_boot=300, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert (first['ci_low'] <= first['share_ai']).all() and (first['share_ai'] <= first['ci_high']).all()


def test_ci_resamples_selectors_not_choices():
    # Each selector always makes the same choice, so round shares move together across rounds:
    # resampling selectors gives the same interval in every round and the mean over rounds a CI
    # no narrower than one round's (independent choices would shrink it).
    always = {f'ai{i}': [1] * 10 for i in range(10)} | {f'hu{i}': [0] * 10 for i in range(10)}
    table = ai_choice_share(_choices(always), n_boot=2000, seed=1)
    assert table['ci_low'].nunique() == 1 and table['ci_high'].nunique() == 1
    width = table['ci_high'].iloc[0] - table['ci_low'].iloc[0]
    binomial_width_200_choices = 2 * 1.96 * np.sqrt(0.25 / 200)
    assert width > 2 * binomial_width_200_choices


def test_above_chance_flags_ci_beyond_chance():
    data = _choices({f's{i}': [1, 1, 0] if i < 18 else [0, 1, 0] for i in range(20)})
    table = ai_choice_share(data, n_boot=500, seed=0).set_index('round')
    assert table.loc[1, 'above_chance'] == True  # noqa: E712
    assert table.loc[3, 'above_chance'] == False  # noqa: E712
