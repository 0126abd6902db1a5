"""The AI-calls export in the analysis: validation, fallback shares with agent-clustered CIs that cover, the
report's AI-calls section."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import ai_calls as aic
from analysis.io import ExportError, load_ai_calls, validate_ai_calls, write_export
from game_logic.export_schema import AI_CALL_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def calls_frame(n_agents=8, calls_per_agent=6, fallback_rates=None, seed=0) -> pd.DataFrame:
    """An AI-calls export of LLM selectors' choices: agent i falls back with fallback_rates[i]."""
    rng = np.random.default_rng(seed)
    rates = fallback_rates if fallback_rates is not None else [0.2] * n_agents
    rows = []
    for agent, rate in enumerate(rates):
        for round_number in range(1, calls_per_agent + 1):
            fell = rng.random() < rate
            rows.append({c: '' for c in AI_CALL_COLUMNS} | dict(
                session_code='s1', group_id=str(agent // 3 + 1), round=str(round_number), app='partner_selection',
                candidate_id=f'S{agent % 3 + 1}', decision='choice', policy='llm', model='m',
                raw_reply_json='"{}"', parsed_value='{}', latency_ms=str(100 + round_number),
                prompt_tokens='' if fell else '300', completion_tokens='' if fell else '20',
                fallback='1' if fell else '0', fallback_reason='invalid_json' if fell else ''))
    return pd.DataFrame(rows, dtype=object)


def test_a_valid_export_is_typed_and_a_bad_one_names_column_and_line():
    calls = validate_ai_calls(calls_frame())
    assert calls['round'].dtype == float and set(calls['fallback'].unique()) <= {0.0, 1.0}
    bad = calls_frame()
    bad.loc[3, 'decision'] = 'guess'
    with pytest.raises(ExportError, match=r"'decision' must be one of .* 'guess' at line 5"):
        validate_ai_calls(bad)
    unexplained = calls_frame()
    unexplained.loc[0, ['fallback', 'fallback_reason']] = ['1', '']
    with pytest.raises(ExportError, match="'fallback_reason' is empty where fallback is 1, at line 2"):
        validate_ai_calls(unexplained)
    with pytest.raises(ExportError, match='missing column'):
        validate_ai_calls(calls_frame().drop(columns=['fallback']))


def test_summary_counts_calls_agents_fallbacks_and_tokens_of_answered_calls():
    calls = validate_ai_calls(calls_frame(fallback_rates=[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], calls_per_agent=4))
    row = aic.call_summary(calls).iloc[0]
    assert (row['n_calls'], row['n_agents'], row['n_fallback']) == (24, 6, 8)
    assert row['fallback_share'] == pytest.approx(8 / 24)
    assert row['prompt_tokens_mean'] == 300 and row['completion_tokens_mean'] == 20  # answered calls only
    assert row['fallback_ci_low'] < row['fallback_share'] < row['fallback_ci_high']
    reasons = aic.fallback_reasons(calls)
    assert reasons[['fallback_reason', 'n', 'share_of_fallbacks']].values.tolist() == [['invalid_json', 8, 1.0]]


def test_too_few_agents_withhold_the_interval():
    calls = validate_ai_calls(calls_frame(fallback_rates=[0.5] * (aic.MIN_AGENTS - 1)))
    row = aic.call_summary(calls).iloc[0]
    assert not np.isnan(row['fallback_share'])
    assert np.isnan(row['fallback_se']) and np.isnan(row['fallback_ci_low']) and np.isnan(row['fallback_ci_high'])


def test_agent_clustered_interval_covers_the_population_share_where_agents_differ():
    """Agents' fallback rates drawn from Beta(1, 3) (mean 0.25): calls of one agent are correlated, so a
    binomial interval would be too narrow; the clustered one must cover the mean rate 0.90-0.98 of the time
    (400 datasets of 30 agents × 10 calls)."""
    rng = np.random.default_rng(7)
    covered, naive_covered, n_sets = 0, 0, 400
    for _ in range(n_sets):
        rates = rng.beta(1, 3, size=30)
        flags = (rng.random((30, 10)) < rates[:, None]).astype(float).ravel()
        clusters = pd.Series(np.repeat(np.arange(30), 10))
        share, se, low, high, _ = aic.clustered_share(pd.Series(flags), clusters)
        covered += low <= 0.25 <= high
        naive_se = np.sqrt(share * (1 - share) / len(flags))
        naive_covered += share - 1.96 * naive_se <= 0.25 <= share + 1.96 * naive_se
    assert 0.90 <= covered / n_sets <= 0.98, covered / n_sets
    assert naive_covered / n_sets < 0.85  # what the clustering is for


def test_report_adds_the_ai_calls_section_and_refuses_the_file_as_the_main_export(tmp_path):
    from analysis.simulate import simulate_session
    decisions, _ = simulate_session('rescorla_wagner', {}, treatments=['hidden', 'disclosed'], n_groups=4,
                                    n_rounds=3, seed=1)
    decisions.attrs = {}
    write_export(decisions, tmp_path / 'decisions.csv')
    write_export(calls_frame(), tmp_path / 'ai_calls.csv', AI_CALL_COLUMNS)
    assert len(load_ai_calls(tmp_path / 'ai_calls.csv')) == 48

    def run(*args):
        options = ['--no-progress', '--mixed', 'off', '--n-boot', 0, '--curve-boot', 0, '--curve-perm', 0,
                   '--starts', 1]
        return subprocess.run([sys.executable, '-m', 'analysis', 'report', *map(str, [*args, *options])],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)

    result = run(tmp_path / 'decisions.csv', '--ai-calls', tmp_path / 'ai_calls.csv', '--out', tmp_path / 'out')
    assert result.returncode == 0, result.stderr
    html = (tmp_path / 'out' / 'report.html').read_text(encoding='utf-8')
    assert '<h2>AI calls</h2>' in html and 'Why calls fell back' in html
    results = json.loads((tmp_path / 'out' / 'results.json').read_text(encoding='utf-8'))
    assert results['ai_calls']['summary'][0]['n_calls'] == 48
    assert pd.read_csv(tmp_path / 'out' / 'ai_calls.csv')['n_calls'].tolist() == [48]
    wrong = run(tmp_path / 'ai_calls.csv', '--out', tmp_path / 'out2')
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1].endswith('this is the AI-calls export; give the decisions export '
                                                          'as EXPORT and this file with --ai-calls')
