"""Compositions (issue 15, item 2): which policy each AI candidate plays, rotated over groups; scripted stated
intentions kept with a probability; candidate capacity with a seeded, kind-blind reassignment."""
import json
import random

import pandas as pd

import pytest

from ai_partners import GameView, make_partner, read_settings, seat_settings
from ai_partners import scripted
from game_logic import round_engine as engine
from game_logic import export_schema, session_config, society
from game_logic.round_engine import Choice


def config(**values):
    return session_config.parse(values, num_rounds_max=20)


# --- the mix per seat and the rotation over groups -------------------------------------------------------

def test_mix_assigns_entries_to_ai_candidates_in_order():
    cfg = config(num_ai_candidates=3, ai_candidate_mix='prosocial_ai, human_like:0.5 ,llm')
    assert cfg.ai_candidate_entries(cfg.composition_rotation[0]) == [
        ('prosocial_ai', None), ('human_like', 0.5), ('llm', None)]
    assert cfg.uses_llm


def test_empty_mix_gives_every_ai_candidate_the_session_policy():
    cfg = config(num_ai_candidates=2, ai_preset='human_like')
    assert cfg.composition_rotation == ['']
    assert cfg.ai_candidate_entries('') == [('human_like', None)] * 2
    assert not cfg.uses_llm


def test_compositions_rotate_over_groups_like_treatments():
    cfg = config(compositions='prosocial_ai,prosocial_ai; human_like,prosocial_ai:1', treatments='hidden,disclosed')
    rotation = cfg.composition_rotation
    picked = [society.treatment_for_group(g, rotation) for g in (1, 2, 3, 4)]
    assert picked == ['prosocial_ai,prosocial_ai', 'human_like,prosocial_ai:1'] * 2


def test_seat_settings_follow_the_entry():
    base = read_settings({'ai_preset': 'prosocial_ai'})
    assert seat_settings(base, ('human_like', 0.3)).ai_preset == 'human_like'
    assert seat_settings(base, ('human_like', 0.3)).intention_honesty == 0.3
    llm = seat_settings(base, ('llm', None))
    assert (llm.ai_policy, llm.ai_preset) == ('llm', 'prosocial_ai')  # the session preset stays its fallback


@pytest.mark.parametrize('values, words', [
    (dict(num_ai_candidates=2, ai_candidate_mix='prosocial_ai'), 'names 1 AI candidate(s), num_ai_candidates is 2'),
    (dict(num_ai_candidates=2, ai_candidate_mix='prosocial_ai,robot'), "'robot'"),
    (dict(num_ai_candidates=1, ai_candidate_mix='human_like:1.5'), 'must be 0..1'),
    (dict(num_ai_candidates=1, ai_candidate_mix='human_like:often'), 'probability 0..1'),
    (dict(num_ai_candidates=1, ai_candidate_mix='llm:0.5'), 'only scripted candidates state an intention'),
    (dict(num_ai_candidates=2, compositions='prosocial_ai,llm;human_like'), 'compositions'),
    (dict(num_ai_candidates=1, num_human_candidates=1, candidate_capacity=1), 'candidate_capacity'),
    (dict(candidate_capacity=-1), 'candidate_capacity must be'),
])
def test_bad_composition_config_is_rejected_naming_the_field(values, words):
    with pytest.raises(session_config.ConfigError, match='session config') as error:
        config(**values)
    assert words in str(error.value)


# --- stated intentions ------------------------------------------------------------------------------------

VIEW = GameView(role='candidate', round_number=1, num_rounds=10, endowment=10, multiplier=3, max_message_length=200)


def kept_rate(honesty, draws=600, received=30):
    kept = 0
    for i in range(draws):
        rng = scripted.decision_rng(1, f'k{i}', 1, 'intention')
        intention = scripted.draw_intention(honesty, rng)
        returned = scripted.return_for_intention(intention, random.Random(i), received)
        assert 0 <= returned <= received
        kept += scripted.keeps_intention(intention.fraction, returned, received)
    return kept / draws


@pytest.mark.parametrize('received', [3, 9, 30, 300])
def test_an_honest_intention_is_always_kept_and_a_dishonest_one_never(received):
    for i in range(200):
        fraction = sorted(scripted.INTENTIONS)[i % 3]
        honest = scripted.return_for_intention(scripted.Intention(fraction, True), random.Random(i), received)
        liar = scripted.return_for_intention(scripted.Intention(fraction, False), random.Random(i), received)
        assert scripted.keeps_intention(fraction, honest, received)
        assert not scripted.keeps_intention(fraction, liar, received) or liar == 0
        assert liar < fraction * received


def test_honesty_one_and_zero_are_always_and_never_kept():
    assert kept_rate(1.0) == 1.0
    assert kept_rate(0.0) == 0.0


@pytest.mark.parametrize('honesty', [0.3, 0.7])
def test_realised_honesty_rate_is_near_the_probability(honesty):
    assert abs(kept_rate(honesty, draws=2000) - honesty) < 0.04


def test_a_scripted_seat_states_its_intention_and_returns_by_it_reproducibly():
    settings = seat_settings(read_settings({}), ('human_like', 1.0))
    partner = make_partner(settings, 'S-g1-A1')
    message = partner.write_message(VIEW).value
    intention = partner.intention(1)
    assert message.startswith(scripted.intention_sentence(intention, 'casual'))
    returned = partner.decide_return(VIEW, amount_sent=10, amount_received=30, counterpart='x').value
    assert scripted.keeps_intention(intention.fraction, returned, 30)
    again = make_partner(settings, 'S-g1-A1')
    assert again.write_message(VIEW).value == message
    assert again.decide_return(VIEW, amount_sent=10, amount_received=30, counterpart='x').value == returned


def test_a_seat_without_honesty_writes_the_plain_scripted_message():
    plain = make_partner(read_settings({}), 'S-g1-A1')
    assert plain.intention(1) is None
    assert plain.write_message(VIEW).value == make_partner(
        seat_settings(read_settings({}), ('prosocial_ai', None)), 'S-g1-A1').write_message(VIEW).value


# --- candidate capacity -----------------------------------------------------------------------------------

def crowd(chosen, ids=('A1', 'A2', 'H1', 'H2'), amount=10):
    """Selectors s0, s1, … choosing `chosen` ('' = no choice); every selector sees all `ids`, shuffled per selector."""
    choices = [Choice(f's{i}', cid, amount if cid else 0) for i, cid in enumerate(chosen)]
    offered = {}
    for i in range(len(chosen)):
        order = list(ids)
        random.Random(i).shuffle(order)
        offered[f's{i}'] = tuple(order)
    return choices, offered


def counts(choices):
    out = {}
    for c in choices:
        if c.made:
            out[c.candidate_id] = out.get(c.candidate_id, 0) + 1
    return out


@pytest.mark.parametrize('capacity', [1, 2])
def test_no_candidate_takes_more_selectors_than_its_capacity(capacity):
    for seed in range(50):
        chosen = [random.Random(seed).choice(['A1', 'H1']) for _ in range(4)]
        choices, offered = crowd(chosen)
        result = engine.apply_capacity(choices, offered, capacity, f'seed-{seed}')
        assert max(counts(result).values()) <= capacity
        assert sum(c.made for c in result) == 4  # 4 cards × capacity ≥ 4 selectors: everyone seated
        for before, after in zip(choices, result):
            assert after.reassigned == (before.candidate_id != after.candidate_id)
            assert after.amount_sent == before.amount_sent
            assert after.candidate_id in offered[after.selector_code]


def test_capacity_zero_leaves_choices_alone():
    choices, offered = crowd(['A1'] * 4)
    assert engine.apply_capacity(choices, offered, 0, 'x') == tuple(choices)


def test_reassignment_is_seeded():
    choices, offered = crowd(['H1'] * 4)
    first = engine.apply_capacity(choices, offered, 1, 'seed')
    assert engine.apply_capacity(choices, offered, 1, 'seed') == first
    assert any(engine.apply_capacity(choices, offered, 1, f'seed{i}') != first for i in range(20))
    assert sum(c.reassigned for c in first) == 3


def test_reassignment_is_kind_blind():
    """Swapping the kinds (ids) of candidates while keeping the decisions moves the same selectors to the same cards."""
    swap = {'A1': 'H1', 'H1': 'A1', 'A2': 'H2', 'H2': 'A2'}
    for seed in range(30):
        chosen = [random.Random(seed * 7 + i).choice(['A1', 'A2', 'H1']) for i in range(5)]
        choices, offered = crowd(chosen)
        swapped_choices = [Choice(c.selector_code, swap[c.candidate_id], c.amount_sent) for c in choices]
        swapped_offered = {code: tuple(swap[cid] for cid in ids) for code, ids in offered.items()}
        result = engine.apply_capacity(choices, offered, 2, f'g1-r{seed}')
        swapped = engine.apply_capacity(swapped_choices, swapped_offered, 2, f'g1-r{seed}')
        assert [swap.get(c.candidate_id, '') for c in result] == [c.candidate_id for c in swapped]
        assert [c.reassigned for c in result] == [c.reassigned for c in swapped]


def test_no_card_with_room_leaves_the_selector_without_a_choice():
    choices = [Choice('s0', 'A1', 10), Choice('s1', 'A1', 10), Choice('s2', '', 0)]
    offered = {'s0': ('A1',), 's1': ('A1',), 's2': ('A1',)}  # the other candidates dropped out
    result = engine.apply_capacity(choices, offered, 1, 'seed')
    assert sorted((c.candidate_id, c.reassigned) for c in result[:2]) == [('', True), ('A1', False)]
    assert result[2] == choices[2]


# --- the population engine follows the same rules -------------------------------------------------------

def test_population_run_with_compositions_and_capacity_writes_exports_analysis_reads(tmp_path):
    from analysis.io import read_export
    from population import from_mapping, run, write_exports

    config = from_mapping(dict(groups=2, selectors_per_group=4, num_human_candidates=2, num_ai_candidates=2,
                               rounds=3, treatments='hidden,disclosed', candidate_capacity=1,
                               compositions='prosocial_ai:1,human_like:0;human_like:0.5,prosocial_ai'))
    result = run(config)
    paths = write_exports(result, tmp_path)
    kind, decisions = read_export(paths['decisions'])
    assert kind == 'decisions'
    kind, candidates = read_export(paths['candidates'])
    assert kind == 'candidates'
    assert list(pd.read_csv(paths['decisions'], nrows=0).columns) == export_schema.DECISION_COLUMNS
    by_group = decisions.groupby('group_id')['ai_composition'].unique().to_dict()
    assert {g: list(v) for g, v in by_group.items()} == {1: ['prosocial_ai:1,human_like:0'],
                                                         2: ['human_like:0.5,prosocial_ai']}
    assert (candidates['times_chosen'] <= 1).all()
    assert decisions['choice_reassigned'].sum() > 0
    moved = decisions['picked_candidate_id'] != decisions['chosen_candidate_id']
    assert (moved == (decisions['choice_reassigned'] == 1)).all()
    assert decisions['chosen_candidate_id'].astype(str).str.len().gt(0).all()  # 4 cards × 1 = 4 selectors
    policy = candidates[candidates['kind'] == 'ai'].groupby(['group_id', 'candidate_id'])['policy'].first()
    assert policy.to_dict() == {(1, 'A1'): 'scripted:prosocial_ai:1', (1, 'A2'): 'scripted:human_like:0',
                                (2, 'A1'): 'scripted:human_like:0.5', (2, 'A2'): 'scripted:prosocial_ai'}
    # A1 of group 1 keeps its stated intention always, A2 never: its returns tell them apart
    ai = candidates[(candidates['group_id'] == 1) & (candidates['kind'] == 'ai') & (candidates['times_chosen'] > 0)]
    for _, row in ai.iterrows():
        message = json.loads(row['message_json'])
        fraction = next(f for f, words in scripted.INTENTIONS.items() if message.startswith(words['polished'])
                        or message.startswith(words['casual']))
        kept = scripted.keeps_intention(fraction, int(row['amount_returned']), int(row['amount_received']))
        assert kept == (row['candidate_id'] == 'A1')


def test_population_refuses_two_ways_of_naming_the_ai_seats_and_too_little_capacity():
    from population import from_mapping

    with pytest.raises(session_config.ConfigError, match='give one of them'):
        from_mapping(dict(ai_presets=['human_like'], ai_candidate_mix='prosocial_ai,llm'))
    with pytest.raises(session_config.ConfigError, match='candidate_capacity'):
        from_mapping(dict(selectors_per_group=9, candidate_capacity=2))


def test_fast_engine_refuses_compositions_and_capacity():
    from population import from_mapping, run_fast

    with pytest.raises(session_config.ConfigError, match='rules engine'):
        run_fast(from_mapping(dict(candidate_capacity=2)))
