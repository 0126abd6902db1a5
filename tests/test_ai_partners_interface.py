"""The package interface: session config reading, GameView checks, AIDecision rows, no oTree import."""
import subprocess
import sys
from pathlib import Path

import pytest

from ai_partners import AI_DECISION_COLUMNS, AIDecision, CONFIG_DEFAULTS, GameView, make_partner, read_settings
from ai_partners.llm import LLMPartner
from ai_partners.partners import ScriptedPartner

REPO = Path(__file__).resolve().parents[1]


def test_as_row_has_exactly_the_documented_keys():
    expected = ['decision', 'value', 'policy', 'model', 'endpoint_host', 'prompt', 'raw_reply', 'latency_ms',
                'prompt_tokens', 'completion_tokens', 'fallback', 'fallback_reason']
    row = AIDecision(decision='return', value=3, policy='scripted', model='prosocial_ai').as_row()
    assert list(row) == expected == list(AI_DECISION_COLUMNS)


def test_empty_config_takes_defaults_and_the_settings_file_defaults_agree():
    settings = read_settings({})
    assert settings.ai_policy == 'scripted' and settings.ai_preset == 'prosocial_ai'
    import ast
    tree = ast.parse((REPO / 'settings.py').read_text())
    defaults = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], 'id', '') == 'SESSION_CONFIG_DEFAULTS')
    in_settings = {kw.arg: ast.literal_eval(kw.value) for kw in defaults.keywords if kw.arg in CONFIG_DEFAULTS}
    for name, value in in_settings.items():
        assert CONFIG_DEFAULTS[name] == value, name


def test_make_partner_picks_the_configured_policy():
    assert isinstance(make_partner(dict(ai_policy='scripted'), 'k'), ScriptedPartner)
    assert isinstance(make_partner(dict(ai_policy='llm'), 'k'), LLMPartner)


@pytest.mark.parametrize('config, field', [
    (dict(ai_policy='gpt'), 'ai_policy'),
    (dict(ai_preset='saint'), 'ai_preset'),
    (dict(llm_timeout_seconds='soon'), 'llm_timeout_seconds'),
    (dict(llm_timeout_seconds=0), 'llm_timeout_seconds'),
    (dict(llm_temperature=5), 'llm_temperature'),
    (dict(ai_seed=1.5), 'ai_seed'),
    (dict(ai_policy='llm', llm_base_url='localhost:8080'), 'llm_base_url'),
    (dict(ai_policy='llm', llm_base_url='http://[::1/v1'), 'llm_base_url'),
])
def test_bad_session_config_is_rejected_naming_the_field(config, field):
    with pytest.raises(ValueError, match=field):
        make_partner(config, 'k')


def test_empty_candidate_key_is_rejected():
    with pytest.raises(ValueError, match='candidate_key'):
        make_partner({}, '')


@pytest.mark.parametrize('kwargs, field', [
    (dict(role='selector'), 'role'),
    (dict(identity='secret'), 'identity'),
    (dict(shown_as='Robot'), 'shown_as'),
    (dict(round_number=0), 'round_number'),
    (dict(round_number=11), 'round_number'),
    (dict(max_message_length=0), 'max_message_length'),
    (dict(history=[(1, 2)]), 'history'),
])
def test_bad_game_view_is_rejected_naming_the_field(kwargs, field):
    base = dict(role='candidate', round_number=1, num_rounds=10, endowment=10, multiplier=3)
    with pytest.raises(ValueError, match=field):
        GameView(**{**base, **kwargs})


def test_game_view_copies_history_so_later_changes_do_not_leak_in():
    history = [dict(round=1, received=30, returned=10)]
    view = GameView(role='candidate', round_number=2, num_rounds=10, endowment=10, multiplier=3, history=history)
    history[0]['returned'] = 99
    assert view.history[0]['returned'] == 10


def test_package_does_not_import_otree():
    code = 'import sys, ai_partners, ai_partners.llm; print(any(m.split(".")[0] == "otree" for m in sys.modules))'
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'
