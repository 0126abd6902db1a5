"""Power analysis: rises with the number of groups, holds its level under a null, reads off groups needed."""
import numpy as np
import pandas as pd
import pytest

from analysis.power import Design, build_parser, groups_needed, main, power_grid

# disclosed selectors learn towards AI (0.3 -> 0.75), hidden ones stay at chance
LEARNING = {'hidden': {'p0': 0.5, 'p_inf': 0.5, 'k': 0.0}, 'disclosed': {'p0': 0.3, 'p_inf': 0.75, 'k': 0.3}}
NULL = {'p0': 0.5, 'p_inf': 0.5, 'k': 0.0}


def test_power_rises_with_the_number_of_groups():
    design = Design(model='curve', params=LEARNING, n_rounds=8)
    table = power_grid(design, [4, 20], n_sims=25, tests=('late_share', 'trend_disclosed'), progress=False)
    power = table.pivot(index='n_groups', columns='test', values='power')
    assert (power.loc[20] > power.loc[4] + 0.2).all()
    assert (power.loc[20] >= 0.6).all()
    assert (table['n_failed'] == 0).all()


def test_identity_bias_power_rises_with_groups():
    design = Design(params={'alpha': 0.3, 'beta': 8.0, 'bias': {'dist': 'normal', 'mean': -1.0, 'sd': 0.3}},
                    n_rounds=8)
    table = power_grid(design, [2, 12], n_sims=12, tests=('identity_bias',), progress=False)
    power = table.set_index('n_groups')['power']
    assert power[12] > power[2] and power[12] >= 0.8


def test_a_null_effect_is_rejected_at_about_alpha():
    # Same flat behaviour in both treatments: neither the treatment contrast nor the disclosed trend exists.
    # 150 datasets: the rejection rate's Monte Carlo SE is about 0.018 at alpha = 0.05; tolerance 0.0–0.10.
    design = Design(model='curve', params=NULL, n_rounds=6)
    table = power_grid(design, [20], n_sims=150, tests=('late_share', 'trend_disclosed'), seed=3, progress=False)
    for _, row in table.iterrows():
        assert row['power'] <= 0.10, row['test']


def test_groups_needed_interpolates_between_grid_points():
    table = pd.DataFrame(dict(test='t', n_groups=[10, 20, 40], power=[0.5, 0.7, 0.95]))
    assert groups_needed(table, 0.8)['n_groups'].iloc[0] == 28  # 20 + (0.1 / 0.25) · 20
    assert groups_needed(table, 0.4)['n_groups'].iloc[0] == 10
    assert np.isnan(groups_needed(table, 0.99)['n_groups'].iloc[0])


def test_help_works(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(['--help'])
    assert info.value.code == 0
    assert '--groups' in capsys.readouterr().out


def test_command_writes_the_table_and_the_power_curve(tmp_path, capsys):
    stem = tmp_path / 'power'
    code = main(['--model', 'curve', '--param', 'hidden.p0=0.5', '--param', 'hidden.p_inf=0.5', '--param', 'hidden.k=0',
                 '--param', 'disclosed.p0=0.3', '--param', 'disclosed.p_inf=0.7', '--param', 'disclosed.k=0.3',
                 '--tests', 'late_share', '--groups', '4,8', '--sims', '3', '--rounds', '6', '--workers', '1',
                 '--no-progress', '--out', str(stem)])
    assert code == 0
    table = pd.read_csv(f'{stem}.csv')
    assert list(table['n_groups']) == [4, 8] and set(table['test']) == {'late_share'}
    for suffix in ('.png', '.svg', '_groups_needed.csv'):
        assert (tmp_path / f'power{suffix}').stat().st_size > 0
    assert 'groups for 80%' in capsys.readouterr().out


def test_bad_settings_exit_2(capsys):
    assert main(['--tests', 'nonsense', '--no-progress']) == 2
    assert 'unknown test' in capsys.readouterr().err


def test_the_package_command_line_runs_power(capsys):
    from analysis.cli import main as analysis_main

    with pytest.raises(SystemExit) as info:
        analysis_main(['power', '--help'])
    assert info.value.code == 0
    assert 'python -m analysis power' in capsys.readouterr().out
    assert analysis_main(['power', '--groups', '1']) == 2  # a bad design: one error line, exit 2
