"""A bad session config stops oTree's session creation with a message naming the field, in both apps,
before any participant sees a page (in-process bot sessions, tests/otree_bots.py)."""
import pytest

from otree_bots import BotJob

# (config, overrides, what the error must say). The first two crashed mid-session before the typed
# config: on the Choose page after consent (belief_13), and when 13 selectors chose one human (return_13).
REFUSED = [
    ('ps_hidden', {'num_ai_candidates': 11}, 'at most 12 (one guess field per card), got 13'),
    ('ps_disclosed', {'num_selectors': 13}, 'num_selectors + num_ai_selectors must be at most 12'),
    ('ps_disclosed', {'ai_policy': 'llm', 'llm_timeout_seconds': 40.0},
     'llm_timeout_seconds must be below ai_collect_deadline_seconds'),
    ('ps_disclosed', {'ai_collect_deadline_seconds': 0.0}, 'ai_collect_deadline_seconds must be a number'),
    ('ps_disclosed', {'ai_min_return_seconds': -1.0}, 'ai_min_return_seconds must be a number 0..3600'),
    ('ps_balanced', {'treatments': 'hidden,secret'}, "got unknown ['secret']"),
    ('trust_ai_hidden', {'endowment': 0}, 'endowment must be a whole number 1..1000, got 0'),
    ('trust_ai_hidden', {'partner': 'robot'}, 'partner must be one of human, ai'),
    ('trust_ai_hidden', {'ai_preset': 'nice'}, 'ai_preset must be one of'),
]
JOBS = [BotJob(config, case=0, overrides=overrides) for config, overrides, _ in REFUSED]


@pytest.mark.parametrize('job, message', [pytest.param(job, message, marks=pytest.mark.otree_bots(job),
                                                       id=f'{job.config}-{next(iter(job.overrides))}')
                                          for job, (_, _, message) in zip(JOBS, REFUSED)])
def test_bad_config_stops_session_creation_naming_the_field(job, message, otree_bot_runs):
    run = otree_bot_runs[job]
    assert not run.ok, 'a session was created with ' + repr(job.overrides)
    assert 'ConfigError' in run.error and message in run.error, run.error
    assert not run.session_codes
