"""Loading and validating exports: good files load typed, bad files fail with a message naming the problem."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import io as analysis_io
from analysis.io import (DECISION_COLUMNS, ExportError, detect_export_kind, exclusion_summary, fit_sample,
                         load_candidates, load_decisions, load_trust_game, read_export, write_export)
from analysis.simulate import simulate_session

DATA = Path(__file__).parent / 'data'
ROOT = Path(__file__).resolve().parents[1]


def test_decisions_fixture_loads_with_types_and_flags_timeouts():
    decisions = load_decisions(DATA / 'analysis_decisions_small.csv')
    raw = pd.read_csv(DATA / 'analysis_decisions_small.csv', dtype=str, keep_default_na=False)
    # written before `belief_round_paid`, the config id and the group composition existed: an older export
    # still loads, those columns unknown (empty)
    added_later = analysis_io._ADDED_LATER['decisions']
    assert {'belief_round_paid', 'config_id', 'group_selectors'} <= set(added_later)
    assert list(raw.columns) == [c for c in DECISION_COLUMNS if c not in added_later]
    assert decisions['belief_round_paid'].isna().all()
    assert (decisions['config_id'] == '').all()
    timed_out = raw['choice_timed_out'] == '1'
    assert timed_out.sum() == 3  # the fixture was simulated with 3 timeouts
    # kept, flagged, and never turned into a 0 choice
    assert len(decisions) == len(raw)
    assert decisions.loc[timed_out.to_numpy(), 'chose_ai'].isna().all()
    assert decisions['excluded_from_fit'].sum() == 3
    assert len(fit_sample(decisions)) == len(raw) - 3
    assert set(decisions['chose_ai'].dropna().unique()) <= {0.0, 1.0}
    summary = exclusion_summary(decisions)
    assert summary['n_choice_timed_out'].sum() == 3
    assert (summary['n_decisions'] - summary['n_no_choice'] == summary['n_used_in_fits']).all()


def test_each_export_kind_is_detected_by_its_columns():
    assert read_export(DATA / 'analysis_decisions_small.csv')[0] == 'decisions'
    assert read_export(DATA / 'analysis_candidates_small.csv')[0] == 'candidates'
    assert read_export(DATA / 'analysis_trust_small.csv')[0] == 'trust_game'
    assert detect_export_kind(['decision', 'raw_reply_json', 'latency_ms', 'x']) == 'ai_calls'


def test_candidates_fixture_decodes_messages_and_returns():
    candidates = load_candidates(DATA / 'analysis_candidates_small.csv')
    decisions = load_decisions(DATA / 'analysis_decisions_small.csv')
    assert candidates['message'].str.len().equals(candidates['message_length'].astype(int))
    assert (candidates['returns_list'].map(len) == candidates['times_chosen']).all()
    # every return in the candidates export is a return in the decisions export
    assert candidates['amount_returned'].sum() == decisions['amount_returned'].sum()


def test_trust_game_fixture_flags_send_timeout():
    trust = load_trust_game(DATA / 'analysis_trust_small.csv')
    assert trust['excluded_from_fit'].tolist() == [False, False, False, True]


@pytest.mark.parametrize('filename, expected', [
    ('analysis_missing_columns.csv', "missing column(s) 'offered_kinds', 'chose_ai'"),
    ('analysis_empty.csv', 'the file is empty'),
    ('analysis_header_only.csv', 'header but no decision rows'),
    ('analysis_garbage.csv', 'not a CSV text file'),
    ('analysis_unrelated.csv', 'matches none of the decisions, candidates or trust_game exports'),
    ('analysis_otree_wide.csv', 'this is the wide CSV of oTree'),
    ('analysis_bad_chose_ai.csv', "column 'chose_ai' must be one of {0, 1, empty}; found 'yes' at line 4"),
    ('does_not_exist.csv', 'file not found'),
])
def test_bad_file_raises_export_error_naming_the_problem(filename, expected):
    with pytest.raises(ExportError) as info:
        read_export(DATA / filename) if filename != 'analysis_missing_columns.csv' else load_decisions(DATA / filename)
    assert expected in str(info.value)
    assert filename in str(info.value)


@pytest.mark.parametrize('content, expected', [
    (',,,\n,,,\n', 'the file is empty'),
    ('\ufeff', 'the file is empty'),
    ('session_code,round,round\nabc,1,2\n', "the header repeats column(s) 'round'"),
])
def test_degenerate_files_raise_export_error(tmp_path, content, expected):
    path = tmp_path / 'odd.csv'
    path.write_text(content, encoding='utf-8')
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert expected in str(info.value) and 'odd.csv' in str(info.value)


def test_wrong_export_for_the_loader_says_what_the_file_is():
    with pytest.raises(ExportError, match='looks like the partner_selection candidates export'):
        load_decisions(DATA / 'analysis_candidates_small.csv')


def _broken(tmp_path, change):
    decisions, _ = simulate_session('random', n_groups=1, n_rounds=2, seed=1)
    decisions = decisions.astype(object)
    change(decisions)
    path = tmp_path / 'broken.csv'
    write_export(decisions, path)
    return path


@pytest.mark.parametrize('change, message', [
    (lambda d: d.__setitem__('chose_ai', 1 - d['chose_ai'].astype(int)), 'chose_ai disagrees with chosen_kind'),
    (lambda d: d.__setitem__('round', 0), "column 'round' must be >= 1"),
    (lambda d: d.__setitem__('round', 'inf'), "column 'round' must be numeric; found 'inf'"),
    (lambda d: d.__setitem__('round', '1e400'), "column 'round' must be numeric; found '1e400'"),
    (lambda d: d.__setitem__('treatment', 'secret'), "column 'treatment' must be one of"),
    (lambda d: d.__setitem__('offered_kinds', 'ai;human'), 'one kind per offered candidate'),
    (lambda d: d.__setitem__('amount_sent', 'ten'), "column 'amount_sent' must be numeric; found 'ten'"),
    (lambda d: d.__setitem__('choice_timed_out', 1), 'choice_timed_out=1 but a choice is recorded'),
    (lambda d: d.__setitem__('chosen_position', 9), 'chosen_position is beyond the offered cards'),
])
def test_inconsistent_values_are_rejected(tmp_path, change, message):
    with pytest.raises(ExportError, match=message.replace('(', r'\(').replace(')', r'\)')):
        load_decisions(_broken(tmp_path, change))


def test_messages_with_newlines_and_unicode_survive_the_round_trip(tmp_path):
    decisions, candidates = simulate_session('random', n_groups=2, n_rounds=3, seed=4)
    decisions.loc[0, 'offered_messages_json'] = json.dumps(['line one\nline "two", é — 😀'] * 4, ensure_ascii=False)
    candidates.loc[0, 'message_json'] = json.dumps('hi,\nthere "x"', ensure_ascii=False)
    candidates.loc[0, 'message_length'] = len('hi,\nthere "x"')
    write_export(decisions, tmp_path / 'd.csv')
    write_export(candidates, tmp_path / 'c.csv')
    loaded = load_decisions(tmp_path / 'd.csv')
    assert json.loads(loaded.loc[0, 'offered_messages_json'])[0] == 'line one\nline "two", é — 😀'
    assert load_candidates(tmp_path / 'c.csv').loc[0, 'message'] == 'hi,\nthere "x"'


def test_missing_values_are_empty_cells_not_zero(tmp_path):
    decisions, _ = simulate_session('random', n_groups=2, n_rounds=4, timeout_rate=0.5, seed=2)
    write_export(decisions, tmp_path / 'd.csv')
    rows = (tmp_path / 'd.csv').read_text(encoding='utf-8').splitlines()
    raw = pd.read_csv(tmp_path / 'd.csv', dtype=str, keep_default_na=False)
    timed_out = raw[raw['choice_timed_out'] == '1']
    assert len(timed_out) > 0 and (timed_out['chose_ai'] == '').all() and (timed_out['amount_returned'] == '').all()
    assert len(rows) == len(decisions) + 1


def test_cli_prints_the_problem_without_traceback_and_exits_nonzero(tmp_path):
    for name in ('analysis_missing_columns.csv', 'analysis_garbage.csv', 'analysis_empty.csv'):
        result = subprocess.run([sys.executable, '-m', 'analysis', 'report', str(DATA / name), '--out', str(tmp_path)],
                                capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 2
        assert 'Traceback' not in result.stderr
        assert result.stderr.startswith('error: ') and name in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize('encoding, expected', [
    ('utf-16', 'UTF-16 (little-endian) text, not UTF-8'),  # Python writes a byte-order mark
    ('utf-16-le', 'UTF-16 (little-endian) text, not UTF-8'),  # none: found by the NUL pattern
    ('utf-16-be', 'UTF-16 (big-endian) text, not UTF-8'),
    ('utf-32', 'UTF-32 (little-endian) text, not UTF-8'),
    ('cp1252', 'not a UTF-8 CSV text file'),
])
def test_wrong_encoding_is_named(tmp_path, encoding, expected):
    source = DATA / 'analysis_decisions_small.csv'
    path = tmp_path / 'encoded.csv'
    path.write_bytes(source.read_text(encoding='utf-8').replace('a', 'ä', 1).encode(encoding))
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert expected in str(info.value) and 'binary' not in str(info.value)


@pytest.mark.parametrize('delimiter, expected', [(';', 'separated by semicolons'), ('\t', 'separated by tabs')])
def test_wrong_delimiter_is_named(tmp_path, delimiter, expected):
    import csv
    rows = list(csv.reader((DATA / 'analysis_decisions_small.csv').open(encoding='utf-8')))
    path = tmp_path / 'semicolons.csv'
    with path.open('w', encoding='utf-8', newline='') as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    with pytest.raises(ExportError, match=expected):
        read_export(path)
