"""Column names of the custom exports (README, "Data codebook"), one definition for the apps and analysis.

Free of oTree so that `analysis` can validate files against the very lists the apps write.
"""
import json

# partner_selection `custom_export`: one row per selector × played round
DECISION_COLUMNS = [
    'session_code', 'group_id', 'treatment', 'round', 'selector_id', 'selector_label',
    'n_candidates_offered', 'n_ai_offered', 'ai_share_offered', 'offered_candidate_ids', 'offered_kinds',
    'offered_badges', 'offered_display_labels', 'offered_messages_json', 'chosen_candidate_id', 'chosen_kind',
    'chosen_badge', 'chosen_position', 'chose_ai', 'amount_sent', 'multiplier', 'amount_received_by_candidate',
    'amount_returned', 'return_timed_out', 'return_fallback', 'selector_payoff', 'belief_guesses',
    'belief_n_correct', 'belief_bonus', 'seconds_on_choice_page', 'choice_timed_out',
]

# partner_selection `custom_export_candidates`: one row per candidate (human or AI) × played round
CANDIDATE_COLUMNS = [
    'session_code', 'group_id', 'treatment', 'round', 'candidate_id', 'participant_code', 'kind', 'policy',
    'message_json', 'message_length', 'active', 'times_chosen', 'amount_received', 'amount_returned', 'returns',
    'candidate_payoff', 'message_timed_out', 'return_timed_out', 'message_fallback', 'return_fallback', 'dropped',
]

# `custom_export_ai_calls` of both apps: one row per AI decision
AI_CALL_COLUMNS = [
    'session_code', 'group_id', 'round', 'app', 'candidate_id', 'decision', 'policy', 'model', 'endpoint_host',
    'prompt_json', 'raw_reply_json', 'parsed_value', 'latency_ms', 'prompt_tokens', 'completion_tokens',
    'fallback', 'fallback_reason',
]

# trust_game `custom_export`: one row per trustor × played round
TRUST_GAME_COLUMNS = [
    'session_code', 'round', 'pair_id', 'identity', 'partner_kind', 'partner_label_shown', 'trustor_id',
    'trustee_id', 'amount_sent', 'multiplier', 'amount_received', 'amount_returned', 'trustor_payoff',
    'trustee_payoff', 'send_timed_out', 'return_timed_out', 'return_fallback',
]


def json_text(text) -> str:
    """A free-text cell as a JSON string literal: oTree's CSV writer turns raw newlines into spaces."""
    return json.dumps(text or '', ensure_ascii=False)
