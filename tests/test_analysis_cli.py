"""Command line end to end: simulate an export, report on it; --help documents every option."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / 'data'


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'analysis', *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_simulate_then_report_writes_html_and_figures(tmp_path):
    export, candidates = tmp_path / 'decisions.csv', tmp_path / 'candidates.csv'
    # 30 groups: 10 selectors per treatment, the report's minimum for SEs and tests (fewer withholds them)
    result = _run('simulate', '--out', export, '--candidates-out', candidates, '--groups', 30, '--rounds', 6,
                  '--timeout-rate', 0.05, '--param', 'alpha=0.4', '--seed', 3)
    assert result.returncode == 0, result.stderr
    result = _run('report', export, '--candidates', candidates, '--out', tmp_path / 'out', '--n-boot', 100,
                  '--curve-boot', 20, '--starts', 2, '--no-progress')
    assert result.returncode == 0, result.stderr
    out = tmp_path / 'out'
    html = (out / 'report.html').read_text(encoding='utf-8')
    from PIL import Image
    for figure in ('ai_choice_by_round', 'returns_by_kind', 'model_comparison'):
        assert f'src="{figure}.png"' in html and f'href="{figure}.svg"' in html
        assert (out / f'{figure}.svg').read_text(encoding='utf-8').lstrip().startswith('<?xml')
        with Image.open(out / f'{figure}.png') as image:  # 300 dpi: at least 6 inches × 300 wide
            assert image.size[0] >= 1800 and round(image.info['dpi'][0]) == 300
    for heading in ('Learning-curve parameters', 'Flat versus learning', 'Treatment differences on identified',
                    'Model comparison', 'GEE', 'Mixed logit', 'Message length by kind', 'Belief accuracy',
                    'Decisions kept and excluded', 'Learning-model estimates per treatment'):
        assert heading in html
    assert 'Withheld' not in html and 'warning' not in result.stderr
    # the mixed logit runs in the background (R) but its table stays in its section
    assert html.index('GEE (selector clusters') < html.index('Mixed logit, random intercept and round slope') \
        < html.index('<h2>Learning models</h2>')
    # readable headers in the page, snake_case in the CSVs; every table has its CSV
    assert '<th>AI-choice share (0-1)</th>' in html and 'share_ai' not in html
    import pandas as pd
    assert 'share_ai' in pd.read_csv(out / 'ai_choice_share.csv').columns
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert html.count('<table') == len(results['tables'])
    for name in results['tables']:
        assert (out / name).stat().st_size > 0, name
    assert set(results['treatments']) == {'hidden', 'disclosed', 'false_label'}
    for treatment in results['treatments'].values():
        assert treatment['selected_model'] in ('flat', 'exponential')
        assert {'early_share', 'late_share', 'late_minus_early', 'curve', 'p_flat'} <= set(treatment)
    assert {row['quantity'] for row in results['contrasts']} == {'early_share', 'late_share', 'late_minus_early',
                                                                  'p_inf'}
    assert results['regressions']['gee'] and results['withheld'] == []
    # every key of results.json is documented (docs/analysis.md, "Report outputs")
    documented = (ROOT / 'docs' / 'analysis.md').read_text(encoding='utf-8').split('## Report outputs')[1]
    for key in results:
        assert f'`{key}' in documented, key


def test_one_selector_file_reports_estimates_but_withholds_inference(tmp_path):
    export = tmp_path / 'one.csv'
    result = _run('simulate', '--out', export, '--groups', 1, '--selectors', 1, '--rounds', 10,
                  '--treatments', 'disclosed', '--seed', 1)
    assert result.returncode == 0, result.stderr
    result = _run('report', export, '--out', tmp_path / 'out', '--n-boot', 50, '--curve-boot', 10, '--starts', 1,
                  '--no-progress')
    # a valid file: the report is written (exit 0), every statistic needing clusters is withheld with a warning
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning: withheld:')]
    assert len(warnings) >= 4 and all('fewer than 10' in line for line in warnings)
    html = (tmp_path / 'out' / 'report.html').read_text(encoding='utf-8')
    assert 'Warnings: ' in html and 'fewer than 10 selectors with a choice in disclosed (1 selector)' in html
    assert 'GEE (selector clusters' not in html and 'Mixed logit, random intercepts' not in html
    import pandas as pd
    estimates = pd.read_csv(tmp_path / 'out' / 'learning_models_by_treatment.csv')
    assert estimates['estimate'].notna().all() and estimates['se'].isna().all()
    assert estimates[['ci_low', 'ci_high']].isna().all().all()
    results = json.loads((tmp_path / 'out' / 'results.json').read_text(encoding='utf-8'))
    assert results['contrasts'] == [] and len(results['withheld']) >= 4  # one treatment: nothing to contrast
    disclosed = results['treatments']['disclosed']
    assert disclosed['lr_p_value'] is None and disclosed['p_flat_se'] is None  # never p = 0 from one cluster
    assert disclosed['late_minus_early']['p_value'] is None and disclosed['late_minus_early']['estimate'] is not None


def test_report_on_a_trust_game_export(tmp_path):
    result = _run('report', DATA / 'analysis_trust_small.csv', '--out', tmp_path, '--no-progress')
    assert result.returncode == 0, result.stderr
    assert 'Trust game' in (tmp_path / 'report.html').read_text(encoding='utf-8')


def test_candidates_file_given_as_export_is_explained(tmp_path):
    result = _run('report', DATA / 'analysis_candidates_small.csv', '--out', tmp_path)
    assert result.returncode == 2
    assert 'this is the candidates export' in result.stderr and 'Traceback' not in result.stderr


def test_negative_replicate_counts_are_one_error_line(tmp_path):
    result = _run('report', DATA / 'analysis_otree_ps_balanced_custom.csv', '--out', tmp_path, '--curve-perm', -1)
    assert result.returncode == 2 and 'error: --curve-perm must be 0 or more' in result.stderr
    assert 'Traceback' not in result.stderr


def test_help_documents_every_option():
    from analysis.cli import build_parser
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == 'command').choices
    for name, sub in subparsers.items():
        text = _run(name, '--help').stdout
        for action in sub._actions:
            if action.option_strings and action.dest != 'help':
                assert action.help and action.option_strings[-1] in text, (name, action.dest)


def test_report_on_a_real_otree_bot_export(tmp_path):
    # tests/data/analysis_otree_ps_balanced_custom.csv: `otree test ps_balanced --export` (3 treatments,
    # beliefs, bots that time out), written by the partner_selection app's custom_export.
    export = DATA / 'analysis_otree_ps_balanced_custom.csv'
    result = _run('report', export, '--out', tmp_path, '--n-boot', 100, '--curve-boot', 20, '--starts', 2,
                  '--no-progress')
    assert result.returncode == 0, result.stderr
    import pandas as pd
    html = (tmp_path / 'report.html').read_text(encoding='utf-8')
    assert 'Belief accuracy' in html and 'Treatment differences' in html
    # a handful of bot selectors per treatment: the curve differences and the GEE are withheld (issue 13:
    # they used to print p-values from one or two clusters)
    assert 'Treatment differences involving these treatments: fewer than 10' in html
    contrasts = pd.read_csv(tmp_path / 'treatment_contrasts.csv')
    assert contrasts['p_value'].isna().all() and contrasts['note'].str.startswith(('withheld', 'not identified')).all()


def test_real_otree_export_timeouts_are_flagged_and_counted():
    import pandas as pd

    from analysis.io import exclusion_summary, load_decisions
    export = DATA / 'analysis_otree_ps_balanced_custom.csv'
    raw = pd.read_csv(export, dtype=str, keep_default_na=False)
    summary = exclusion_summary(load_decisions(export)).set_index('treatment')
    expected = raw[raw['choice_timed_out'] == '1'].groupby('treatment').size()
    assert expected.sum() > 0
    assert summary['n_choice_timed_out'].reindex(expected.index).tolist() == expected.tolist()


def test_report_without_r_withholds_the_mixed_logit_with_a_warning(tmp_path, monkeypatch):
    import warnings

    from analysis import regression
    from analysis.io import write_export
    from analysis.report import WithheldStatistic, build_report
    from analysis.simulate import simulate_session

    def no_r(*args, **kwargs):
        raise regression.GLMMUnavailable('Rscript was not found')

    monkeypatch.setattr(regression, 'mixed_logit', no_r)
    decisions, _ = simulate_session('rescorla_wagner', {}, treatments=['hidden', 'disclosed'], n_groups=8,
                                    n_rounds=6, seed=2)
    decisions.attrs = {}
    write_export(decisions, tmp_path / 'decisions.csv')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', WithheldStatistic)
        build_report(tmp_path / 'decisions.csv', tmp_path / 'out', n_boot=20, curve_boot=5, curve_perm=9,
                     n_starts=1, mixed='on', progress=False)
    assert any('Mixed logit: Rscript was not found' in str(w.message) for w in caught)
    results = json.loads((tmp_path / 'out' / 'results.json').read_text(encoding='utf-8'))
    assert 'mixed_logit' not in results['regressions'] and results['regressions']['gee']
    assert any(w.startswith('Mixed logit') for w in results['withheld'])


def test_estimates_use_the_human_selectors_where_ai_selectors_share_the_session():
    from analysis.io import ExportError
    from analysis.report import _selectors_to_fit
    sample = pd.DataFrame(dict(selector_id=['s1', 's2', 's3'], selector_kind=['human', 'ai', 'human']))
    rows, which = _selectors_to_fit(sample, 'auto')
    assert which == 'human' and rows['selector_id'].tolist() == ['s1', 's3']
    assert _selectors_to_fit(sample, 'ai')[0]['selector_id'].tolist() == ['s2']
    assert len(_selectors_to_fit(sample, 'all')[0]) == 3
    only_ai = sample.assign(selector_kind='ai')  # a population run's selectors are all AI agents
    assert _selectors_to_fit(only_ai, 'auto')[1] == 'all'
    with pytest.raises(ExportError, match='no human selectors'):
        _selectors_to_fit(only_ai, 'human')
