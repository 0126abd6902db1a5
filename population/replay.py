"""Replay a partner_selection session's export through the population engine.

`replay_export` reads what the people of a session decided (from its decisions, candidates and config
exports: the selectors' choices and belief guesses, the human candidates' messages and returns, who was
seated where) and lets `population.engine.run` play the session again with those decisions. Everything
else the engine works out itself, as it does in a headless run: the candidate pool, the card letters and
card orders (seeded by the session and participant codes, as in the app), the badges, the AI candidates'
messages and returns (ai_partners' scripted policy with the app's candidate keys), the payoffs and the
belief payment. The replayed export should then equal the session's own, cell for cell
(tests/test_population.py runs it on an oTree bot session).
"""
from __future__ import annotations

import json

import pandas as pd

from game_logic import session_config
from game_logic.round_engine import HumanCandidateSeat, Return

from .config import from_mapping
from .engine import Result, Script, run

__all__ = ['ExportScript', 'replay_export', 'config_from_export']


def _typed(field, text: str):
    if field.type is bool:
        return text.strip() in ('1', 'True', 'true')
    if field.type is int:
        return int(float(text))
    if field.type is float:
        return float(text)
    return text


def config_from_export(config_row: dict, groups: int):
    """A PopulationConfig from one row of a session's config export (custom_export_config)."""
    values = {f.name: _typed(f, config_row[f.name]) for f in session_config.FIELDS if f.name in config_row}
    values['selectors_per_group'] = values.pop('num_selectors')
    values['rounds'] = values.pop('num_rounds')
    # A replay never calls an endpoint: its AI candidates are scripted, as the checks against the app assume
    # (an llm seat of a composition plays its fallback, the session's ai_preset).
    preset = values.get('ai_preset', session_config.FIELDS_BY_NAME['ai_preset'].default)
    mixes = {name: scripted_mixes(values[name], preset) for name in ('ai_candidate_mix', 'compositions')
             if values.get(name, '').strip()}
    scripted = {} if mixes else dict(ai_policies=['scripted'])
    return from_mapping(dict(values, **mixes, **scripted, groups=groups, session_code=config_row['session_code'],
                             name=config_row.get('config_name', '')))


def scripted_mixes(text: str, preset: str) -> str:
    """ai_candidate_mix / compositions text with every llm entry replaced by `preset`."""
    return ';'.join(','.join(preset if entry.strip().split(':')[0] == 'llm' else entry.strip()
                             for entry in mix.split(','))
                    for mix in text.split(';'))


class ExportScript(Script):
    """The people's decisions of one session's exports (DataFrames read as text); AI decisions are left to
    the engine."""

    def __init__(self, decisions: pd.DataFrame, candidates: pd.DataFrame):
        self.decisions = {(int(r.group_id), int(r.round), r.selector_id): r for r in decisions.itertuples()}
        self.candidates = {(int(r.group_id), int(r.round), r.candidate_id): r for r in candidates.itertuples()}
        self.order = {}
        for r in decisions.itertuples():  # the export lists a group's selectors in group order
            codes = self.order.setdefault(int(r.group_id), [])
            if r.selector_id not in codes:
                codes.append(r.selector_id)

    def group_ids(self, config):
        return sorted(self.order)

    def selector_codes(self, group):
        return self.order[group]

    def human_seats(self, group, round_number):
        rows = [r for (g, rnd, cid), r in sorted(self.candidates.items()) if g == group and rnd == round_number
                and r.kind == 'human']
        return [HumanCandidateSeat(r.candidate_id, r.participant_code, 0, r.dropped == '1',
                                   r.active == '0' and r.dropped != '1') for r in rows]

    def message(self, group, round_number, candidate_id):
        row = self.candidates[group, round_number, candidate_id]
        return json.loads(row.message_json) if row.kind == 'human' else None

    def message_timed_out(self, group, round_number, candidate_id):
        return self.candidates[group, round_number, candidate_id].message_timed_out == '1'

    def choice_timed_out(self, group, round_number, selector):
        return self.decisions[group, round_number, selector].choice_timed_out == '1'

    def choice(self, group, round_number, selector):
        row = self.decisions[group, round_number, selector]
        # the pick before the capacity rule (files from before it: the match), so the rule moves the same selectors
        picked = getattr(row, 'picked_candidate_id', '') or row.chosen_candidate_id
        if not picked:
            return '', 0
        # a selector moved to no card sent nothing (the amount picked is not exported); the rule moves it again
        return picked, int(row.amount_sent) if row.amount_sent != '' else 0

    def guesses(self, group, round_number, selector, cards):
        row = self.decisions[group, round_number, selector]
        return row.belief_guesses.split(';') if row.belief_guesses else None

    def returned(self, group, round_number, candidate_id, slot):
        if not candidate_id.startswith('H'):
            return None
        row = self.decisions[group, round_number, slot.selector_code]
        return Return(int(row.amount_returned), row.return_timed_out == '1', row.return_fallback == '1')


def replay_export(decisions: pd.DataFrame, candidates: pd.DataFrame, config_row: dict) -> Result:
    """Play the session again from its exports (one session; frames read with dtype=str)."""
    script = ExportScript(decisions, candidates)
    config = config_from_export(config_row, groups=len(script.order))
    return run(config, script)
