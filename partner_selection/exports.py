"""partner_selection's custom exports (columns and their meaning: game_logic/export_schema.py,
docs/codebook.md): decisions (one row per selector × played round), candidates (one per candidate ×
played round), AI calls (one per AI decision) and the configuration (one per session). AI-call rows carry the
session's config_name and config_id and the group's composition as formed (group_incomplete, S, H, A)."""
import json

from game_logic.export_schema import AI_CALL_COLUMNS, CANDIDATE_COLUMNS, DECISION_COLUMNS, json_text
from study.ai_decisions import ai_call_rows
from study.config import config_of, is_played_round
from study.export import config_cells, custom_export_config, flag, played_groups, schema_table  # noqa: F401

from . import C, AICall, AISelector, ai_selectors, elicits_beliefs, offered_cards, round_candidates, selector_code


def group_composition(group) -> dict:
    """The group as formed: incomplete flag and the selectors, human and AI candidates seated in it."""
    roles = [p.participant.ps_role for p in group.get_players()]
    return dict(
        group_incomplete=flag(group.incomplete), group_selectors=roles.count(C.SELECTOR),
        group_human_candidates=roles.count(C.CANDIDATE), group_ai_candidates=config_of(group).num_ai_candidates,
    )


class GroupCells:
    """config_name, config_id and the composition per group, worked out once per export."""

    def __init__(self):
        self._cells = {}

    def __call__(self, group) -> dict:
        if group.id not in self._cells:
            self._cells[group.id] = dict(config_cells(group), **group_composition(group))
        return self._cells[group.id]


def selector_marks(seat) -> dict:
    """Who the selector is: a human participant or an AI selector, with its policy and parameters."""
    if isinstance(seat, AISelector):
        return dict(selector_kind='ai', selector_policy=seat.policy, selector_params=seat.params_json,
                    choice_fallback=flag(seat.choice_fallback))
    return dict(selector_kind='human', selector_policy='human', selector_params='', choice_fallback=0)


def decision_row(player, group_cells) -> dict:
    """One selector's round; `player` is a Player or an AISelector (the same field names)."""
    cards = offered_cards(player)
    kinds = [card['kind'] for card in cards]
    chosen = next((card for card in cards if card['candidate_id'] == player.chosen_candidate_id), None)
    n_ai = kinds.count('ai')
    beliefs_elicited = elicits_beliefs(player)
    multiplier = config_of(player).multiplier
    return dict(
        session_code=player.session.code,
        group_id=player.group.id_in_subsession,
        treatment=player.treatment,
        round=player.round_number,
        selector_id=selector_code(player),
        selector_label='' if isinstance(player, AISelector) else player.participant.label or '',
        **selector_marks(player),
        n_candidates_offered=len(cards),
        n_ai_offered=n_ai,
        ai_share_offered=round(n_ai / len(cards), 6) if cards else '',
        offered_candidate_ids=';'.join(card['candidate_id'] for card in cards),
        offered_kinds=';'.join(kinds),
        offered_badges=';'.join(card['badge'] for card in cards),
        offered_display_labels=';'.join(card['label'] for card in cards),
        offered_messages_json=json.dumps([card['message'] for card in cards], ensure_ascii=False),
        chosen_candidate_id=chosen['candidate_id'] if chosen else '',
        chosen_kind=chosen['kind'] if chosen else '',
        chosen_badge=chosen['badge'] if chosen else '',
        chosen_position=chosen['position'] if chosen else '',
        chose_ai=(1 if chosen['kind'] == 'ai' else 0) if chosen else '',
        # No choice (timed out): nothing was sent, and an empty cell says so (a 0 would read as a choice).
        amount_sent=player.amount_sent if chosen else '',
        multiplier=multiplier,
        amount_received_by_candidate=player.amount_sent * multiplier if chosen else '',
        amount_returned=player.amount_returned if chosen else '',
        return_timed_out=flag(player.return_timed_out),
        return_fallback=flag(player.return_fallback),
        selector_payoff=int(player.payoff),
        belief_guesses=player.belief_guesses if beliefs_elicited else '',
        belief_n_correct=player.belief_n_correct if beliefs_elicited else '',
        belief_bonus=player.belief_bonus_paid,
        belief_round_paid=flag(player.belief_round_paid) if beliefs_elicited else '',
        seconds_on_choice_page=player.seconds_on_choice_page,
        choice_timed_out=flag(player.choice_timed_out),
        **group_cells(player.group),
        ai_composition=player.group.ai_composition,
        choice_reassigned=flag(player.choice_reassigned),
        picked_candidate_id=picked_candidate_id(player, cards),
    )


def picked_candidate_id(player, cards) -> str:
    """The card the selector picked (its letter is `choice`), before the capacity rule moved it."""
    if not player.choice_reassigned:
        return player.chosen_candidate_id
    return next((card['candidate_id'] for card in cards if card['label'] == player.choice), '')


def custom_export(players):
    """Decisions: one row per selector (human or AI) × played round."""
    players = list(players)
    selectors = [
        p for p in players
        if is_played_round(p) and p.participant.ps_role == C.SELECTOR and not p.participant.excluded
    ]
    # AI selectors after the people, group by group and round by round
    selectors += [seat for group in played_groups(players) for seat in ai_selectors(group)]
    group_cells = GroupCells()
    return schema_table(DECISION_COLUMNS, (decision_row(p, group_cells) for p in selectors))


def message_length(candidate) -> int | str:
    """Characters of the message shown; empty when a human candidate's message page timed out (no
    message written is not a message of length 0). A timed-out AI call shows its fallback message."""
    if candidate.message_timed_out and not candidate.message:
        return ''
    return len(candidate.message)


def candidate_rows(players):
    group_cells = GroupCells()
    for group in played_groups(players):
        for c in round_candidates(group):
            yield dict(
                session_code=group.session.code, group_id=group.id_in_subsession, treatment=group.treatment,
                round=group.round_number, candidate_id=c.candidate_id, participant_code=c.participant_code,
                kind=c.kind, policy=c.policy, message_json=json_text(c.message), message_length=message_length(c),
                active=flag(c.active), times_chosen=c.times_chosen, amount_received=c.amount_received,
                amount_returned=c.amount_returned, returns=c.returns, candidate_payoff=c.payoff,
                message_timed_out=flag(c.message_timed_out), return_timed_out=flag(c.return_timed_out),
                message_fallback=flag(c.message_fallback), return_fallback=flag(c.return_fallback),
                dropped=flag(c.dropped), **group_cells(group), ai_composition=group.ai_composition,
            )


def custom_export_candidates(players):
    """Candidates: one row per candidate (human or AI) × played round."""
    return schema_table(CANDIDATE_COLUMNS, candidate_rows(players))


def custom_export_ai_calls(players):
    """AI calls: one row per AI decision, with prompt, raw reply, latency and fallback."""
    group_cells = GroupCells()
    rows = (dict(row, **group_cells(group))
            for group in played_groups(players) for row in ai_call_rows(AICall, 'partner_selection', [group]))
    return schema_table(AI_CALL_COLUMNS, rows)
