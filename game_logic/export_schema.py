"""Columns of the custom exports, one definition for the apps, analysis and the codebook (docs/codebook.md).

Each export is a tuple of `Column(name, description)` in the order the CSV has them; the module-level
lists DECISION_COLUMNS, CANDIDATE_COLUMNS, AI_CALL_COLUMNS and TRUST_GAME_COLUMNS are their names.
`python -m scripts.make_docs` writes the codebook from EXPORTS.

Free of oTree so that `analysis` can validate files against the very lists the apps write.
"""
import hashlib
import json
from dataclasses import dataclass
from typing import Mapping

from . import session_config


@dataclass(frozen=True)
class Column:
    """One export column: its CSV header and a one-line meaning (Markdown, no `|`)."""

    name: str
    description: str


@dataclass(frozen=True)
class Export:
    """One custom export: a codebook heading, what one row is, and its columns in CSV order."""

    heading: str
    rows: str
    columns: tuple


def config_id(values: Mapping) -> str:
    """A short stable id of a session's configuration: the first 12 hex digits of the SHA-256 of every
    session-config field's value (session_config.FIELDS, as parsed: typed, defaults filled in) as sorted
    JSON. Equal ids mean equal values of every field; the config's name is not part of it. A code version
    that adds a field gives every config a new id (the new field's value is part of the hash)."""
    canonical = {f.name: values[f.name] for f in session_config.FIELDS}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(',', ':'))
    return hashlib.sha256(text.encode('utf8')).hexdigest()[:12]


# Under which configuration a row was produced (the config export has the values). In the AI calls and the
# config export now; the decisions, candidates and trust_game exports get them (and the composition) once
# analysis/io.py lists them in _ADDED_LATER (its validator requires every schema column, so adding them here
# alone would refuse every export collected before).
CONFIG_ID_COLUMNS = (
    Column('config_name', "the session config's `name` (settings.py SESSION_CONFIGS)"),
    Column('config_id', "short stable hash of every session-config field's value (`export_schema.config_id`): "
                        'rows with the same id ran under the same values; they are in `custom_export_config`'),
)

# The group as it was formed (not the configured sizes): partner_selection rows; counted when the group
# formed, so later exclusions and dropouts do not change them (see `active` / `dropped` in the candidates).
GROUP_COMPOSITION_COLUMNS = (
    Column('group_incomplete', '1 if the group formed with fewer humans than `num_selectors + num_human_candidates` '
                               '(lab remainder with `remainder = smaller_group`, or arrival fallback), else 0'),
    Column('group_selectors', 'selectors seated in the group when it formed (S)'),
    Column('group_human_candidates', 'human candidates seated in the group when it formed (H)'),
    Column('group_ai_candidates', 'AI candidates in the group (A; `num_ai_candidates`)'),
)

# Which AI candidates the group had (session config ai_candidate_mix / compositions, rotated over groups like the
# treatments): partner_selection decisions and candidates, so the analysis can split by it.
AI_COMPOSITION_COLUMNS = (
    Column('ai_composition', "the group's AI-candidate mix as configured (`ai_candidate_mix`, or its entry of "
                             '`compositions`), one entry per AI candidate A1, A2, …, e.g. `prosocial_ai:0.9,llm` '
                             '(`:p` = states its intended return, kept with probability p); empty: every AI '
                             'candidate played `ai_policy` / `ai_preset`'),
)

# Who made a choice: a human selector or an AI selector (session config num_ai_selectors).
SELECTOR_MARK_COLUMNS = (
    Column('selector_kind', '`human`, or `ai` for an AI selector (a selector seat the server plays, '
                            '`num_ai_selectors`; the population engine\'s selectors are all `ai`)'),
    Column('selector_policy', '`human`, or the AI selector\'s policy: `random`, `learner:<model>` '
                              '(`rescorla_wagner` / `ewa`), `llm:<model>`'),
    Column('selector_params', "JSON of the learner's parameters as used (sampled ones drawn), for `learner` and for "
                              "`llm` selectors whose fallback is the learner; else empty"),
    Column('choice_fallback', "1 if an AI selector's choice is its fallback policy's (`ai_selector_fallback`: the "
                              'llm call failed, the reason is in the AI-calls export), else 0'),
)

# partner_selection `custom_export`: one row per selector × played round
DECISION_SCHEMA = (
    Column('session_code', 'oTree session code'),
    Column('group_id', "mini-society number within the session (oTree's group number in the round; "
                       "in `arrival` sessions it need not start at 1)"),
    Column('treatment', '`hidden`, `disclosed` or `false_label`'),
    Column('round', 'round number, 1-based'),
    Column('selector_id', 'participant code of the selector; an AI selector: `<session>-g<group>-S<n>`'),
    Column('selector_label', 'participant label (lab seat or Prolific PID), may be empty (always for an AI selector)'),
    *SELECTOR_MARK_COLUMNS,
    Column('n_candidates_offered', 'active candidates shown this round'),
    Column('n_ai_offered', 'how many of them were AI'),
    Column('ai_share_offered', '`n_ai_offered / n_candidates_offered`: the chance level of choosing an AI'),
    Column('offered_candidate_ids', 'candidate ids in display order, e.g. `H2;A1;H1;A2` (`A` = AI, `H` = human, '
                                    'stable within a group)'),
    Column('offered_kinds', '`ai`/`human` per card, in display order'),
    Column('offered_badges', 'badge shown per card: `AI`, `Human`, or empty (hidden)'),
    Column('offered_display_labels', 'the neutral card letter the selector saw per card (`A`, `B`, …; the page '
                                     'shows "Candidate A")'),
    Column('offered_messages_json', 'JSON array of the messages per card, in display order'),
    Column('chosen_candidate_id', 'id of the chosen candidate; empty if the selector timed out'),
    Column('chosen_kind', '`ai` / `human`; empty if no choice'),
    Column('chosen_badge', 'badge shown on the chosen card (empty when hidden)'),
    Column('chosen_position', '1-based display position of the chosen card'),
    Column('chose_ai', '1 if the chosen candidate is an AI, 0 if human, empty if no choice'),
    Column('amount_sent', 'points sent (endowment unless `selector_chooses_amount`)'),
    Column('multiplier', 'multiplier in force'),
    Column('amount_received_by_candidate', '`amount_sent × multiplier`'),
    Column('amount_returned', 'points the candidate returned to this selector'),
    Column('return_timed_out', "1 if the candidate's return decision timed out (return then 0 and flagged)"),
    Column('return_fallback', '1 if an AI return fell back to the scripted policy'),
    Column('selector_payoff', "the selector's points this round: `endowment − sent + returned` (the belief bonus "
                              "is never in it: it is paid once, after the last round, see `belief_bonus`)"),
    Column('belief_guesses', "per card, in display order: the selector's guess `ai`/`human` (empty if not "
                             "elicited)"),
    Column('belief_n_correct', 'number of correct guesses this round (empty if not elicited); selectors see it only '
                               'on the debrief'),
    Column('belief_bonus', "points PAID for this round's guesses: `belief_n_correct × belief_bonus` in a paid round, "
                           '0 in the others; added once to the participant\'s payoff after the last round (not to '
                           '`selector_payoff`); set when the last round is settled'),
    Column('belief_round_paid', "1 if this round's guesses are paid (`belief_payment`: one round drawn per selector, "
                                'or all rounds), 0 if not, empty if not elicited; set when the last round is settled'),
    Column('seconds_on_choice_page', "seconds from the choice page's load to its submission (an AI selector: its "
                                     'decision\'s latency)'),
    Column('choice_timed_out', "1 if the selector's choice page timed out (no choice recorded); always 0 for an AI "
                               "selector (a late choice is its fallback's, `choice_fallback`)"),
    *CONFIG_ID_COLUMNS,
    *GROUP_COMPOSITION_COLUMNS,
    *AI_COMPOSITION_COLUMNS,
    Column('choice_reassigned', '1 if the card the selector picked was full (`candidate_capacity`) and the choice was '
                                'moved at random to another of its cards with room (`chosen_*` is that card; empty '
                                'when none had room), told on the feedback page; else 0'),
    Column('picked_candidate_id', 'id of the card the selector picked, before the capacity rule: equal to '
                                  '`chosen_candidate_id` unless `choice_reassigned` (the demand, where '
                                  '`chosen_candidate_id` is the match); empty if no choice'),
)

# partner_selection `custom_export_candidates`: one row per candidate (human or AI) × played round
CANDIDATE_SCHEMA = (
    Column('session_code', 'oTree session code'),
    Column('group_id', 'mini-society number within the session, as in the decisions export'),
    Column('treatment', '`hidden`, `disclosed` or `false_label`'),
    Column('round', 'round number, 1-based'),
    Column('candidate_id', '`A1`, `H1`, … (stable within the group)'),
    Column('participant_code', 'participant code of a human candidate; empty for AI'),
    Column('kind', '`ai` / `human`'),
    Column('policy', '`human`, `scripted:<preset>` (`scripted:<preset>:<p>` for a seat that states its intended '
                     'return and keeps it with probability p) or `llm:<model>`'),
    Column('message_json', 'the message as a JSON string literal'),
    Column('message_length', 'characters in the message'),
    Column('active', '0 if the candidate was dropped before this round or excluded (no consent, comprehension '
                     'check failed)'),
    Column('times_chosen', 'selectors who chose this candidate this round'),
    Column('amount_received', 'points received (sum over choosing selectors, after multiplication)'),
    Column('amount_returned', 'points returned (sum)'),
    Column('returns', 'the returns per choosing selector, `;`-separated'),
    Column('candidate_payoff', '`candidate_base_pay + amount_received − amount_returned`'),
    Column('message_timed_out', '1 if the message page timed out (human) or the AI call missed its deadline'),
    Column('return_timed_out', '1 if the return page timed out (human) or the AI call missed its deadline'),
    Column('message_fallback', '1 if an AI message fell back to the scripted policy'),
    Column('return_fallback', '1 if an AI return fell back to the scripted policy'),
    Column('dropped', '1 from the round a human candidate is dropped after repeated timeouts'),
    *CONFIG_ID_COLUMNS,
    *GROUP_COMPOSITION_COLUMNS,
    *AI_COMPOSITION_COLUMNS,
)

# `custom_export_ai_calls` of both apps: one row per AI decision
AI_CALL_SCHEMA = (
    Column('session_code', 'oTree session code'),
    Column('group_id', 'partner_selection: the mini-society number; trust_game: the pair id'),
    Column('round', 'round number, 1-based'),
    Column('app', '`partner_selection` or `trust_game`'),
    Column('candidate_id', 'the AI candidate / trustee id, or the AI selector id (`S1`, …) for a `choice`'),
    Column('decision', '`message` or `return`; `choice` for an AI selector\'s choice'),
    Column('policy', 'who decided: the configured policy, `scripted` or `llm`; an AI selector\'s `random`, '
                     '`learner` or `llm`'),
    Column('model', "scripted: the preset name; llm: the model named in the endpoint's reply (else `llm_model`)"),
    Column('endpoint_host', 'host:port of the LLM endpoint (empty for scripted); never the key'),
    Column('prompt_json', 'the prompt sent (JSON string literal; empty for scripted)'),
    Column('raw_reply_json', 'the raw reply text (JSON string literal)'),
    Column('parsed_value', 'the decision used (message text as JSON literal, the integer return, or a choice as '
                           'a JSON object: `card` letter, `amount` sent, `beliefs` per card in card order, `reason`)'),
    Column('latency_ms', 'wall time of the call'),
    Column('prompt_tokens', 'as reported by the endpoint (empty if not)'),
    Column('completion_tokens', 'as reported by the endpoint (empty if not)'),
    Column('fallback', "1 if the scripted policy's decision was used instead"),
    Column('fallback_reason', 'empty, or `timeout`, `connection_error`, `bad_api_key`, `http_<status>`, '
                              '`rate_limited`, `bad_response`, `invalid_json`, `schema:<detail>` (e.g. '
                              '`schema:return_out_of_range`), `deadline`, `not_started` (lost in a server '
                              'restart), `error:<Type>` ([docs/ai_partners.md](ai_partners.md))'),
    # added last: readers that index the columns by position keep working
    *CONFIG_ID_COLUMNS,
    *(Column(c.name, c.description + '; empty in trust_game (a pair is one trustor and one trustee)')
      for c in GROUP_COMPOSITION_COLUMNS),
)

# trust_game `custom_export`: one row per trustor × played round
TRUST_GAME_SCHEMA = (
    Column('session_code', 'oTree session code'),
    Column('round', 'round number, 1-based'),
    Column('pair_id', 'pair number within the round (the group number within the round)'),
    Column('identity', '`disclosed`, `hidden`, `false_label`'),
    Column('partner_kind', 'true kind of the trustee: `ai` / `human`'),
    Column('partner_label_shown', 'what the trustor was told: `AI`, `Human` or empty'),
    Column('trustor_id', 'participant code of the trustor'),
    Column('trustee_id', 'participant code of a human trustee; empty for an AI trustee'),
    Column('amount_sent', 'points the trustor sent; empty if the send timed out'),
    Column('multiplier', 'multiplier in force'),
    Column('amount_received', 'points the trustee received: `amount_sent × multiplier`'),
    Column('amount_returned', 'points the trustee returned'),
    Column('trustor_payoff', "the trustor's points this round: `endowment − sent + returned`"),
    Column('trustee_payoff', "the trustee's points this round: `sent × multiplier − returned`"),
    Column('send_timed_out', "1 if the trustor's send page timed out (counts as 0 sent in the payoffs)"),
    Column('return_timed_out', "1 if the human trustee's return page timed out (counts as 0 returned) or an AI "
                               "trustee's return missed its deadline (the scripted fallback is used)"),
    Column('return_fallback', "1 if an AI trustee's return fell back to the scripted policy"),
    *CONFIG_ID_COLUMNS,
)


def _field_description(field) -> str:
    return f"session config `{field.name}` ({field.allowed()}; default `{field.default!r}`): {field.meaning}".replace('|', '/')


# `custom_export_config` of both apps: one row per session. Generated from session_config.FIELDS: adding a
# field adds a column. Booleans are 1/0; text as configured.
CONFIG_SCHEMA = (
    Column('session_code', 'oTree session code'),
    *CONFIG_ID_COLUMNS,
    *(Column(f.name, _field_description(f)) for f in session_config.FIELDS),
)

# The exit app's `custom_export` (file `exit_custom.csv`): one row per participant who saw the questionnaire.
# These columns first, then one column per item of the questionnaire file, named by the item's `name`, in
# the file's order (empty where the item was not shown to this participant).
QUESTIONNAIRE_SCHEMA = (
    Column('session_code', 'oTree session code'),
    Column('participant_code', 'oTree participant code'),
    Column('participant_label', 'participant label (lab label or Prolific ID), empty if none'),
    *CONFIG_ID_COLUMNS,
    Column('game_role', 'selector or candidate (trust_game: trustor = selector, trustee = candidate)'),
    Column('treatment', 'the identity treatment the participant played: disclosed, hidden or false_label'),
    Column('questionnaire_timed_out', '1 if the page timed out (only the valid answers given are kept)'),
)

DECISION_COLUMNS = [column.name for column in DECISION_SCHEMA]
CANDIDATE_COLUMNS = [column.name for column in CANDIDATE_SCHEMA]
AI_CALL_COLUMNS = [column.name for column in AI_CALL_SCHEMA]
TRUST_GAME_COLUMNS = [column.name for column in TRUST_GAME_SCHEMA]
CONFIG_COLUMNS = [column.name for column in CONFIG_SCHEMA]
QUESTIONNAIRE_COLUMNS = [column.name for column in QUESTIONNAIRE_SCHEMA]

# The codebook's sections, in order (docs/codebook.md).
EXPORTS = (
    Export('`partner_selection` decisions: `custom_export` (file `partner_selection_custom.csv` with '
           '`otree test --export`)', 'One row per selector × round actually played.', DECISION_SCHEMA),
    Export('`partner_selection` candidates: `custom_export_candidates`',
           'One row per candidate (human or AI) × round.', CANDIDATE_SCHEMA),
    Export('AI calls: `custom_export_ai_calls` (both apps)', 'One row per AI decision.', AI_CALL_SCHEMA),
    Export('`trust_game`: `custom_export`', 'One row per trustor × round.', TRUST_GAME_SCHEMA),
    Export('Configuration: `custom_export_config` (both apps)',
           'One row per session: its config name and id and the value of every session-config field.',
           CONFIG_SCHEMA),
    Export('Questionnaire: the `exit` app\'s `custom_export` (file `exit_custom.csv`)',
           'One row per participant who saw the questionnaire; after these columns, one column per item of '
           'the questionnaire file, named by its `name` (docs/questionnaire.md).', QUESTIONNAIRE_SCHEMA),
)


def json_text(text) -> str:
    """A free-text cell as a JSON string literal: oTree's CSV writer turns raw newlines into spaces."""
    return json.dumps(text or '', ensure_ascii=False)
