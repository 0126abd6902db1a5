"""trust_game's custom exports (columns and their meaning: game_logic/export_schema.py, docs/codebook.md): decisions,
AI calls and the configuration (one row per session). AI-call rows carry the session's config_name and
config_id; a pair is always one trustor and one trustee, so the group-composition columns of the AI calls are empty."""
from game_logic.export_schema import AI_CALL_COLUMNS, TRUST_GAME_COLUMNS
from study.ai_decisions import ai_call_rows
from study.config import config_of
from study.export import config_cells, custom_export_config, flag, played_groups, schema_table  # noqa: F401

from . import C, AICall, amount_received, trustor_of


def decision_row(group) -> dict:
    """One trustor × round; decisions not yet made (session still running) are empty cells."""
    trustor = trustor_of(group)
    # A timed-out Send holds 0 for the payoff arithmetic, but it is no decision: an empty cell.
    sent = None if group.send_timed_out else group.field_maybe_none('sent_amount')
    settled = group.settled
    human_trustee = group.partner_kind == 'human'
    return dict(
        session_code=group.session.code,
        round=group.round_number,
        pair_id=group.id_in_subsession,
        identity=group.identity,
        partner_kind=group.partner_kind,
        partner_label_shown=group.label_shown,
        trustor_id=trustor.participant.code,
        trustee_id=group.get_player_by_role(C.TRUSTEE_ROLE).participant.code if human_trustee else '',
        amount_sent='' if sent is None else sent,
        multiplier=config_of(group).multiplier,
        amount_received='' if sent is None else amount_received(group),
        amount_returned=group.sent_back_amount if settled and sent is not None else '',
        trustor_payoff=int(trustor.payoff) if settled else '',
        trustee_payoff=group.trustee_payoff if settled else '',
        send_timed_out=flag(group.send_timed_out),
        return_timed_out=flag(group.return_timed_out),
        return_fallback=flag(group.return_fallback),
        **config_cells(group),
    )


def custom_export(players):
    """Decisions: one row per trustor × played round."""
    return schema_table(TRUST_GAME_COLUMNS, (decision_row(group) for group in played_groups(players)))


def custom_export_ai_calls(players):
    """AI calls: one row per AI trustee decision; group_id is the pair id."""
    no_composition = dict(group_incomplete='', group_selectors='', group_human_candidates='', group_ai_candidates='')
    rows = (dict(row, **config_cells(group), **no_composition)
            for group in played_groups(players) for row in ai_call_rows(AICall, 'trust_game', [group]))
    return schema_table(AI_CALL_COLUMNS, rows)
