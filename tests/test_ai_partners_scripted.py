"""The scripted policy: calibration to the anchor study, scaling, ranges, message bank, determinism."""
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from ai_partners import GameView, make_partner
from ai_partners.scripted import PRESETS, Preset, fit_to_length

REPO = Path(__file__).resolve().parents[1]
DRAWS = 3000


def view(round_number=1, endowment=10, multiplier=3, max_message_length=200, role='candidate', **kw):
    return GameView(role=role, round_number=round_number, num_rounds=10, endowment=endowment,
                    multiplier=multiplier, max_message_length=max_message_length, **kw)


def returns(preset, amount_received, n=DRAWS, endowment=10, multiplier=3):
    """n returns, one per (AI seat, round) combination, all drawn with amount_received."""
    values = []
    for i in range(n):
        partner = make_partner(dict(ai_preset=preset), f'S1-g{i // 10}-A{i % 10}')
        decision = partner.decide_return(view(round_number=1 + i % 10, endowment=endowment, multiplier=multiplier),
                                         amount_sent=amount_received // multiplier,
                                         amount_received=amount_received, counterpart='sel-1')
        values.append(decision.value)
    return values


def messages(preset, n=2000, **view_kw):
    return [make_partner(dict(ai_preset=preset), f'S1-g{i}-A1').write_message(view(**view_kw)).value
            for i in range(n)]


# Anchor study (Jiang et al. 2025): bots return ~19.1 of 30 (sd ~3.4), humans ~11.4 (sd ~6.5).
@pytest.mark.parametrize('preset, mean, sd', [('prosocial_ai', 19.1, 3.4), ('human_like', 11.4, 6.5)])
def test_preset_returns_match_anchor_study_mean_and_sd(preset, mean, sd):
    values = returns(preset, 30)
    assert statistics.mean(values) == pytest.approx(mean, abs=0.5)
    assert statistics.stdev(values) == pytest.approx(sd, abs=0.5)


def test_presets_differ_as_in_the_anchor_study():
    ai, human = returns('prosocial_ai', 30, n=1500), returns('human_like', 30, n=1500)
    pooled_sd = ((statistics.variance(ai) + statistics.variance(human)) / 2) ** 0.5
    cohens_d = (statistics.mean(ai) - statistics.mean(human)) / pooled_sd
    assert cohens_d == pytest.approx(1.46, abs=0.25)  # (19.1-11.4)/sqrt((3.4^2+6.5^2)/2)


@pytest.mark.parametrize('endowment, multiplier, sent', [(20, 4, 20), (10, 3, 7), (100, 2, 100)])
@pytest.mark.parametrize('preset', ['prosocial_ai', 'human_like'])
def test_returns_scale_with_amount_received(preset, endowment, multiplier, sent):
    received = sent * multiplier
    values = returns(preset, received, n=2000, endowment=endowment, multiplier=multiplier)
    fraction_mean = PRESETS[preset].return_fraction_mean
    fraction_sd = PRESETS[preset].return_fraction_sd
    # Tolerance: 0.5 points at 30 received, scaled; rounding adds at most 0.29 sd when received is small.
    tolerance = 0.5 * received / 30 + 0.3
    assert statistics.mean(values) == pytest.approx(fraction_mean * received, abs=tolerance)
    assert statistics.stdev(values) == pytest.approx(fraction_sd * received, abs=tolerance)


@pytest.mark.parametrize('preset', ['prosocial_ai', 'human_like'])
@pytest.mark.parametrize('received', [0, 1, 2, 3, 30, 31, 300])
def test_every_return_is_an_integer_within_zero_and_received(preset, received):
    values = returns(preset, received, n=400)
    assert all(type(v) is int and 0 <= v <= received for v in values)
    if received == 0:
        assert set(values) == {0}


@pytest.mark.parametrize('preset, target', [('prosocial_ai', 120), ('human_like', 48)])
def test_message_lengths_are_near_the_preset_target(preset, target):
    lengths = [len(m) for m in messages(preset)]
    assert statistics.mean(lengths) == pytest.approx(target, rel=0.10)
    assert max(lengths) <= 200 and min(lengths) > 0


@pytest.mark.parametrize('limit', [1, 5, 30, 60])
@pytest.mark.parametrize('preset', ['prosocial_ai', 'human_like'])
def test_messages_never_exceed_max_message_length(preset, limit):
    texts = messages(preset, n=300, max_message_length=limit)
    assert all(0 < len(m) <= limit for m in texts)
    assert all(m == m.strip() for m in texts)


@pytest.mark.parametrize('preset', ['prosocial_ai', 'human_like'])
def test_messages_vary(preset):
    texts = messages(preset, n=200)
    assert len(set(texts)) >= 150
    openings = {m.split()[0] for m in texts}
    assert len(openings) >= 5


def test_trustee_messages_do_not_ask_to_be_chosen():
    texts = messages('prosocial_ai', n=300, role='trustee') + messages('human_like', n=300, role='trustee')
    assert not any('choose me' in m.lower() or 'pick me' in m.lower() for m in texts)


def test_same_key_round_and_counterpart_give_the_same_decision_whatever_the_order():
    partner = make_partner(dict(ai_seed=7), 'S9-g2-A1')
    forward = [partner.decide_return(view(round_number=r), amount_sent=10, amount_received=30,
                                     counterpart=c).value for r in range(1, 11) for c in ('a', 'b')]
    again = make_partner(dict(ai_seed=7), 'S9-g2-A1')
    backward = [again.decide_return(view(round_number=r), amount_sent=10, amount_received=30,
                                    counterpart=c).value for r in reversed(range(1, 11)) for c in ('b', 'a')]
    assert forward == list(reversed(backward))
    assert partner.write_message(view(round_number=4)).value == again.write_message(view(round_number=4)).value


def test_seed_key_and_counterpart_change_the_draws():
    def draws(seed, key, counterpart):
        partner = make_partner(dict(ai_seed=seed), key)
        return [partner.decide_return(view(round_number=r), amount_sent=10, amount_received=30,
                                      counterpart=counterpart).value for r in range(1, 11)]

    base = draws(1, 'k', 'a')
    assert draws(2, 'k', 'a') != base
    assert draws(1, 'k2', 'a') != base
    assert draws(1, 'k', 'b') != base


def test_draws_are_identical_across_processes_with_different_hash_seeds():
    code = ('from ai_partners import make_partner, GameView; '
            'v = GameView(role="candidate", round_number=2, num_rounds=5, endowment=10, multiplier=3); '
            'p = make_partner({}, "S-g1-A2"); '
            'print(p.decide_return(v, amount_sent=10, amount_received=30, counterpart="x").value, '
            'p.write_message(v).value)')
    outputs = {subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, check=True,
                              env={**os.environ, 'PYTHONHASHSEED': seed}).stdout for seed in ('1', '2', '3')}
    assert len(outputs) == 1


def test_scripted_decision_row_has_the_documented_fields():
    row = make_partner({}, 'k').decide_return(view(), amount_sent=10, amount_received=30).as_row()
    assert row['policy'] == 'scripted' and row['model'] == 'prosocial_ai'
    assert row['fallback'] is False and row['fallback_reason'] == '' and row['endpoint_host'] == ''


@pytest.mark.parametrize('kwargs, field', [
    (dict(amount_sent=10, amount_received=-1), 'amount_received'),
    (dict(amount_sent=10, amount_received=30.0), 'amount_received'),
    (dict(amount_sent=-3, amount_received=30), 'amount_sent'),
    (dict(amount_sent=True, amount_received=30), 'amount_sent'),
])
def test_bad_amounts_are_rejected_with_the_field_named(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_partner({}, 'k').decide_return(view(), **kwargs)


def test_preset_with_impossible_sd_is_rejected():
    with pytest.raises(ValueError, match='return_fraction_sd'):
        Preset('bad', 0.5, 0.6, 100, 10, 'polished')


def test_fit_to_length_cuts_at_a_boundary():
    text = 'I will return half. You can trust me completely, friend.'
    assert fit_to_length(text, 25) == 'I will return half.'
    assert fit_to_length('abcdefghij', 4) == 'abcd'
    assert fit_to_length('  short  ', 100) == 'short'
