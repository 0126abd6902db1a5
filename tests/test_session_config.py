"""The one session-config definition (game_logic.session_config): defaults, and every bad value or
combination refused at parse time (session creation) with a message naming the field."""
import importlib.util
from pathlib import Path

import pytest

from ai_partners import CONFIG_DEFAULTS as AI_DEFAULTS
from game_logic import session_config as sc

REPO = Path(__file__).resolve().parents[1]
NUMBER_FIELDS = [f for f in sc.FIELDS if f.type in (int, float)]
CHOICE_FIELDS = [f for f in sc.FIELDS if f.choices]
BOOL_FIELDS = [f for f in sc.FIELDS if f.type is bool]
TEXT_FIELDS = [f for f in sc.FIELDS if f.type is str]


def load_settings():
    spec = importlib.util.spec_from_file_location('project_settings', REPO / 'settings.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_defaults_are_generated_from_the_fields():
    defaults = load_settings().SESSION_CONFIG_DEFAULTS
    assert {k: v for k, v in defaults.items() if k != 'doc'} == sc.defaults()


def test_every_named_session_config_parses():
    for config in load_settings().SESSION_CONFIGS:
        sc.parse(dict(sc.defaults(), **config))


def test_ai_partner_defaults_are_the_fields_defaults():
    assert AI_DEFAULTS == {name: sc.FIELDS_BY_NAME[name].default for name in AI_DEFAULTS}


def test_every_field_has_a_meaning_and_a_valid_default():
    assert len({f.name for f in sc.FIELDS}) == len(sc.FIELDS)
    for field in sc.FIELDS:
        assert field.meaning and field.app in ('both', 'partner_selection', 'trust_game')
    config = sc.parse({})
    assert all(getattr(config, f.name) == f.default for f in sc.FIELDS)


def bad_numbers(field):
    """Values of a number field that must be refused: its type's wrong kinds and just outside its range."""
    values = ['5', True, None, float('nan')]
    if field.type is int:
        values.append(2.5)
    if field.low is not None:
        values.append(field.low - (1 if field.type is int else 0.001))
    if field.high is not None:
        values.append(field.high + 1)
    return values


@pytest.mark.parametrize('field', NUMBER_FIELDS, ids=lambda f: f.name)
def test_a_wrong_number_is_refused_naming_the_field_and_its_range(field):
    for value in bad_numbers(field):
        with pytest.raises(sc.ConfigError) as raised:
            sc.parse({field.name: value})
        assert f'{field.name} must be' in str(raised.value), value
        assert field.allowed() in str(raised.value) or field.name == 'num_rounds'


@pytest.mark.parametrize('field', NUMBER_FIELDS, ids=lambda f: f.name)
def test_a_number_at_its_bounds_is_accepted(field):
    for value in (field.low, field.high):
        if value is None or (field.name == 'num_rounds' and value > sc.max_rounds()):
            continue
        config = {field.name: value}
        if field.name in ('num_selectors', 'num_ai_selectors') and value > sc.MAX_RETURN_SLOTS:
            config['num_human_candidates'] = 0
        if field.name in ('num_human_candidates', 'num_ai_candidates') and value > 0:
            other = 'num_ai_candidates' if field.name == 'num_human_candidates' else 'num_human_candidates'
            config[other] = 0
        if field.name == 'llm_timeout_seconds' or field.name == 'ai_collect_deadline_seconds':
            config.update(ai_policy='scripted')
        assert getattr(sc.parse(config), field.name) == value


@pytest.mark.parametrize('field', CHOICE_FIELDS, ids=lambda f: f.name)
def test_a_value_outside_the_choices_is_refused_listing_them(field):
    with pytest.raises(sc.ConfigError) as raised:
        sc.parse({field.name: 'not-a-choice'})
    assert f'{field.name} must be one of ' + ', '.join(field.choices) in str(raised.value)
    for choice in field.choices:
        config = {field.name: choice}
        if choice == 'llm':
            config['llm_timeout_seconds'] = 5
        assert getattr(sc.parse(config), field.name) == choice


@pytest.mark.parametrize('field', BOOL_FIELDS + TEXT_FIELDS, ids=lambda f: f.name)
def test_a_value_of_the_wrong_type_is_refused(field):
    wrong = 1 if field.type is bool else 12
    with pytest.raises(sc.ConfigError, match=f'{field.name} must be'):
        sc.parse({field.name: wrong})


def test_every_problem_is_reported_at_once():
    with pytest.raises(sc.ConfigError) as raised:
        sc.parse(dict(endowment=0, multiplier='3', identity='secret'))
    assert all(name in str(raised.value) for name in ('endowment', 'multiplier', 'identity'))


def test_num_rounds_above_the_apps_rounds_is_refused():
    with pytest.raises(sc.ConfigError, match=r'num_rounds must be a whole number 1\.\.5'):
        sc.parse(dict(num_rounds=6), num_rounds_max=5)
    assert sc.parse(dict(num_rounds=5), num_rounds_max=5).num_rounds == 5


def test_more_cards_than_belief_fields_is_refused_where_beliefs_are_elicited():
    # found by trying: 13 cards with beliefs crashed on the Choose page (belief_13), after consent
    with pytest.raises(sc.ConfigError, match='at most 12 .one guess field per card., got 13'):
        sc.parse(dict(num_ai_candidates=11, elicit_beliefs=True, identity='hidden'))
    with pytest.raises(sc.ConfigError, match='got 13'):
        sc.parse(dict(num_ai_candidates=11, elicit_beliefs=True, treatments='disclosed,false_label'))
    # no guesses in disclosed, or without elicit_beliefs: 13 cards are fine
    assert sc.parse(dict(num_ai_candidates=11, elicit_beliefs=True, identity='disclosed')).num_candidates == 13
    assert sc.parse(dict(num_ai_candidates=11, identity='hidden')).num_candidates == 13


def test_more_selectors_than_return_fields_is_refused_when_a_human_can_be_chosen():
    # found by trying: 13 selectors choosing one human candidate crashed (return_13)
    with pytest.raises(sc.ConfigError, match='num_selectors \\+ num_ai_selectors must be at most 12'):
        sc.parse(dict(num_selectors=13))
    assert sc.parse(dict(num_selectors=13, num_human_candidates=0)).num_selectors == 13
    # AI selectors choose human candidates too: they count
    with pytest.raises(sc.ConfigError, match='got 13'):
        sc.parse(dict(num_selectors=10, num_ai_selectors=3))
    assert sc.parse(dict(num_selectors=10, num_ai_selectors=2)).num_ai_selectors == 2


@pytest.mark.parametrize('fields, message', [
    (dict(ai_selector_policies='llm,gpt'), "ai_selector_policies must be a comma list of random, learner, llm, got"),
    (dict(ai_selector_policies=' , '), 'ai_selector_policies must be a comma list'),
    (dict(ai_selector_model='q_learning'), 'ai_selector_model must be one of rescorla_wagner, ewa'),
    (dict(ai_selector_fallback='llm'), 'ai_selector_fallback must be one of random, learner'),
    (dict(ai_selector_params='alpha=0.3'), 'ai_selector_params must be a JSON object'),
    (dict(ai_selector_params='[0.3]'), 'ai_selector_params must be a JSON object of parameters'),
    (dict(ai_selector_params='{"alpha": 1.5}'), 'alpha must be a number or a [low, high] pair within 0..1'),
    (dict(ai_selector_params='{"beta": [8, 2]}'), 'beta: a number or a [low, high] pair with low <= high'),
    (dict(ai_selector_params='{"phi": 0.5}'), "'phi' is not a parameter of rescorla_wagner"),
    (dict(ai_selector_params='{"beta": "high"}'), 'ai_selector_params beta'),
    (dict(num_ai_selectors=1, ai_selector_policies='llm', llm_timeout_seconds=30), 'llm_timeout_seconds must be below'),
    (dict(num_ai_selectors=1, ai_selector_policies='llm', llm_base_url='localhost:8080'), 'llm_base_url must be an http'),
])
def test_bad_ai_selector_fields_are_refused_naming_the_field(fields, message):
    with pytest.raises(sc.ConfigError) as raised:
        sc.parse(fields)
    assert message in str(raised.value)


def test_ai_selector_fields_parse_to_a_policy_per_seat_and_params():
    config = sc.parse(dict(num_ai_selectors=3, ai_selector_policies='llm, llm ,learner', ai_selector_model='ewa',
                           ai_selector_params='{"phi": 0.9, "beta": [2, 10], "q0": 0.5}'))
    assert config.ai_selector_ids == ['S1', 'S2', 'S3']
    assert [config.ai_selector_policy_of(i) for i in (1, 2, 3, 4)] == ['llm', 'llm', 'learner', 'llm']
    assert sc.parse_selector_params(config.ai_selector_params) == {'phi': 0.9, 'beta': (2.0, 10.0), 'q0': 0.5}
    assert config.uses_llm and not sc.parse(dict(ai_selector_policies='llm')).uses_llm  # no AI selector: no call


def test_a_group_needs_a_candidate_and_at_most_as_many_as_card_letters():
    with pytest.raises(sc.ConfigError, match='at least 1, got 0'):
        sc.parse(dict(num_human_candidates=0, num_ai_candidates=0))
    with pytest.raises(sc.ConfigError, match='at most 22 .card letters., got 23'):
        sc.parse(dict(num_human_candidates=11, num_ai_candidates=12, num_selectors=1))


def test_llm_timeout_must_be_below_the_collect_deadline():
    with pytest.raises(sc.ConfigError, match='llm_timeout_seconds must be below ai_collect_deadline_seconds'):
        sc.parse(dict(ai_policy='llm', llm_timeout_seconds=30, ai_collect_deadline_seconds=30))
    assert sc.parse(dict(ai_policy='llm', llm_timeout_seconds=29, ai_collect_deadline_seconds=30))


def test_money_fields_accept_otree_currency_like_numbers():
    from decimal import Decimal
    assert sc.parse(dict(participation_fee=Decimal('2.50'))).participation_fee == 2.5


def test_unknown_treatment_names_the_field():
    with pytest.raises(sc.ConfigError, match=r"treatments must be a comma list .* got unknown \['hiden'\]"):
        sc.parse(dict(treatments='hidden,hiden'))


def test_markdown_table_has_one_row_per_field_and_no_stray_pipes():
    lines = sc.markdown_table().splitlines()[2:]
    assert [line.split('`')[1] for line in lines] == [f.name for f in sc.FIELDS]
    assert all(line.count('|') == 7 for line in lines)
