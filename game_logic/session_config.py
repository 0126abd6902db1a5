"""Every session-config field, defined once: name, type, default, allowed values, app, meaning.

`settings.SESSION_CONFIG_DEFAULTS` is built from FIELDS (`defaults()`), the docs' configuration table
too (`markdown_table()`), and `parse(config)` turns oTree's session config into a typed, fully validated
`SessionConfig` once, when the session is created: every bad value or combination fails there with a
message that names the field and what is allowed, never on a page after participants consented.
No oTree import here.
"""
from __future__ import annotations

import json
import os
from urllib.parse import urlsplit
from dataclasses import dataclass, make_dataclass
from typing import Mapping

IDENTITIES = ('disclosed', 'hidden', 'false_label')
# Where the badge is not the truth: beliefs are elicited and the debrief reveals the kinds.
UNDISCLOSED_IDENTITIES = ('hidden', 'false_label')
PARTNER_KINDS = ('human', 'ai')
AI_POLICIES = ('scripted', 'llm')
# How an AI selector (a selector seat played by the server) chooses, and what its faults fall back to.
AI_SELECTOR_POLICIES = ('random', 'learner', 'llm')
AI_SELECTOR_FALLBACKS = ('random', 'learner')
# The learning rules an AI `learner` selector plays (ai_partners.learning.MODELS).
AI_SELECTOR_MODELS = ('rescorla_wagner', 'ewa')
GROUPINGS = ('lab', 'arrival')
# What happens to participants who cannot fill a group (fewer than num_selectors + num_human_candidates).
REMAINDER_POLICIES = ('smaller_group', 'leave')
# When the belief bonus is paid (always after the last played round; never in a round's feedback or payoff).
BELIEF_PAYMENTS = ('one_random_round', 'all_rounds')
# Card letters available (game_logic.society.LABEL_LETTERS): the most candidates one group can show.
MAX_CANDIDATES = 22
# partner_selection has one belief field per card and one return field per choosing selector on the
# Player (belief_1.., return_1..; oTree fields are fixed), so these bound the per-group sizes.
MAX_BELIEF_CARDS = 12
MAX_RETURN_SLOTS = 12
DEFAULT_MAX_ROUNDS = 20


class ConfigError(ValueError):
    """A session config that cannot run; the message names the field and what is allowed."""


def max_rounds(env=os.environ) -> int:
    """The apps' NUM_ROUNDS: OTREE_MAX_ROUNDS if set (a positive integer), else 20.

    oTree needs NUM_ROUNDS as a constant, so `num_rounds` plays a prefix of them. Every unplayed round
    still costs server time (about 0.15 s per round and participant when oTree walks past it), so the
    bound is kept small; a study that needs more rounds raises it (restart the server, `otree resetdb`).
    """
    raw = env.get('OTREE_MAX_ROUNDS', '').strip()
    if not raw:
        return DEFAULT_MAX_ROUNDS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f'OTREE_MAX_ROUNDS must be a positive whole number, got {raw!r}')
    return int(raw)


@dataclass(frozen=True)
class Field:
    """One session-config field. `low`/`high` bound numbers (None: unbounded); `choices` bound strings."""

    name: str
    type: type
    default: object
    app: str  # 'both', 'partner_selection' or 'trust_game'
    meaning: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    def allowed(self) -> str:
        """The allowed values in words, as error messages and the docs table state them."""
        if self.choices:
            return 'one of ' + ', '.join(self.choices)
        if self.type is bool:
            return 'True or False'
        if self.type is str:
            return 'text'
        kind = 'whole number' if self.type is int else 'number'
        if self.low is not None and self.high is not None:
            return f'{kind} {_num(self.low)}..{_num(self.high)}'
        if self.low is not None:
            return f'{kind} >= {_num(self.low)}'
        return kind


def _num(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_BOTH, _PS, _TRUST = 'both', 'partner_selection', 'trust_game'
_DAY = 24 * 3600

FIELDS = (
    # --- money ---
    Field('real_world_currency_per_point', float, 0.05, _BOTH, 'money per point', low=0),
    Field('participation_fee', float, 2.00, _BOTH,
          'added to every participant\'s pay, also to those routed out', low=0),
    # --- the game (both apps) ---
    Field('num_rounds', int, 10, _BOTH,
          'rounds played (at most OTREE_MAX_ROUNDS, default 20; unplayed rounds are skipped and left out '
          'of the custom exports)', low=1, high=None),
    Field('endowment', int, 10, _BOTH, 'points a selector / trustor gets each round', low=1, high=1000),
    Field('multiplier', int, 3, _BOTH, 'the amount sent is multiplied by this', low=1, high=100),
    Field('identity', str, 'disclosed', _BOTH,
          'disclosed (true badge), hidden (no badge), false_label (badge swapped)', choices=IDENTITIES),
    Field('max_message_length', int, 200, _BOTH, 'characters a candidate message may have (also the limit given to '
          'the LLM)', low=1, high=2000),
    # --- trust_game: the assigned-partner baseline ---
    Field('partner', str, 'human', _TRUST, 'the trustee is a human participant or an AI partner',
          choices=PARTNER_KINDS),
    Field('rematch', bool, False, _TRUST, 're-match trustors with trustees every round'),
    # --- partner_selection: the mini-society ---
    Field('num_selectors', int, 3, _PS, 'human selectors per group (S of the analysis simulator)', low=1, high=100),
    Field('num_human_candidates', int, 2, _PS, 'human candidates per group (H)', low=0, high=MAX_CANDIDATES),
    Field('num_ai_candidates', int, 2, _PS, 'AI candidates per group (A; they live on the server, no seat)',
          low=0, high=MAX_CANDIDATES),
    Field('selector_chooses_amount', bool, False, _PS,
          'selectors choose how much to send (0..endowment) instead of sending the endowment'),
    Field('candidate_base_pay', int, 0, _PS, 'points an active candidate gets each round besides the returns',
          low=0, high=1000),
    Field('persistent_candidate_labels', bool, False, _PS,
          'a candidate keeps its card letter for the whole session (else redrawn each round)'),
    Field('elicit_beliefs', bool, False, _PS,
          'hidden / false_label: selectors guess for every card whether it is an AI'),
    Field('belief_bonus', int, 1, _PS, 'points per correct AI/human guess', low=0, high=1000),
    Field('belief_payment', str, 'one_random_round', _PS,
          "how the guesses are paid, always at the end (accuracy and bonus appear only on the debrief and "
          "payment pages, never in a round's feedback or payoff, which would tell a selector which cards were "
          "AI): `one_random_round` pays the guesses of one round drawn per selector (reproducibly, from the "
          "session and participant codes; recorded in the export), the incentive-compatible choice: every guess "
          "may be the one paid, and there is nothing to gain from hedging across rounds (no wealth or "
          "portfolio effects); `all_rounds` pays every round's correct guesses",
          choices=BELIEF_PAYMENTS),
    Field('show_history', bool, True, _PS, 'selectors see a table of their own past partners'),
    Field('market_feedback', bool, False, _PS,
          'after each round candidates see every card of the round as selectors saw it (letter, badge, message) '
          'and how often each was chosen, so imitation of successful messages can be studied'),
    Field('treatments', str, '', _PS,
          "comma list of identities rotated over groups (e.g. 'hidden,disclosed'); empty: every group "
          'plays `identity`'),
    Field('grouping', str, 'lab', _PS,
          'lab (groups from the session\'s participants) or arrival (online: groups by arrival time)',
          choices=GROUPINGS),
    Field('remainder', str, 'smaller_group', _PS,
          'participants who cannot fill a group (lab: participants not a multiple of num_selectors + '
          'num_human_candidates; arrival: those still waiting after arrival_max_wait_seconds): '
          '`smaller_group` plays them as a smaller group, flagged `incomplete`, with the treatment that comes '
          'after the complete groups\' in the rotation (never counted as a complete group); `leave` forms no '
          'group: they are excluded (`exclusion_reason` = `left_over`), see only the payment page and get the '
          'participation fee', choices=REMAINDER_POLICIES),
    Field('arrival_max_wait_seconds', int, 300, _PS,
          'arrival grouping: after this long whoever waits forms a smaller group (flagged `incomplete`); '
          '0 = wait forever',
          low=0, high=_DAY),
    # --- the participant's journey: intro app (consent, rules, checks) and exit app ---
    Field('consent_file', str, '_texts/consent.txt', _BOTH,
          'consent text the researcher edits (placeholders {study_contact}, {ethics_approval}, '
          '{study_duration_minutes}, {participation_fee}); paragraphs separated by a blank line'),
    Field('study_contact', str, '', _BOTH, 'who to contact about the study (consent text)'),
    Field('ethics_approval', str, '', _BOTH, 'the ethics approval (board and number; consent text)'),
    Field('study_duration_minutes', int, 30, _BOTH, 'expected duration stated in the consent text',
          low=1, high=24 * 60),
    Field('comprehension_max_attempts', int, 3, _BOTH,
          'wrong comprehension answers allowed; at the last one the participant is routed out (flag '
          '`comprehension_failed`)', low=1, high=100),
    Field('attention_check', bool, False, _BOTH,
          'an instructed-response item after the comprehension check; a wrong answer routes out '
          '(`exclusion_reason` = `attention_failed`)'),
    Field('questionnaire', bool, True, _BOTH, 'the post-study questionnaire in the exit app'),
    Field('questionnaire_file', str, '_texts/questionnaire.csv', _BOTH,
          'the questionnaire items (one row per item; see docs/questionnaire.md)'),
    Field('prolific_screened_out_url', str, '', _BOTH,
          'Prolific URL for participants routed out before the game (no consent, failed checks, left over)'),
    Field('dropout_after_timeouts', int, 2, _PS,
          'a human candidate timing out this often in a row is dropped from later rounds (flag `dropped`); '
          '0 = never',
          low=0, high=1000),
    Field('prolific_completion_url', str, '', _BOTH,
          'Prolific completion URL shown on the payment page to those who played (and to dropped players)'),
    # --- timing ---
    Field('page_timeout_seconds', int, 120, _BOTH,
          'every decision page (message, choice, return, comprehension; trust_game: send, return); 0 = none',
          low=0, high=_DAY),
    Field('info_page_timeout_seconds', int, 300, _BOTH,
          'every page that only informs or waits on an AI (consent, instructions, AI gates, feedback / results, '
          'debrief, payment); 0 = none', low=0, high=_DAY),
    # --- AI partners (ai_partners/) ---
    Field('ai_policy', str, 'scripted', _BOTH, 'scripted, or llm (any OpenAI-compatible endpoint)',
          choices=AI_POLICIES),
    Field('ai_preset', str, 'prosocial_ai', _BOTH,
          'scripted preset (ai_partners.scripted.PRESETS); also the fallback of llm'),
    Field('ai_seed', int, 12345, _BOTH, 'seed of the scripted policy (each candidate, round and counterpart has '
          'its own stream)'),
    Field('llm_base_url', str, 'http://127.0.0.1:8080/v1', _BOTH, 'OpenAI-compatible endpoint (…/v1)'),
    Field('llm_model', str, 'gpt-4o-mini', _BOTH, 'model name sent to the endpoint'),
    Field('llm_api_key_env', str, 'OPENAI_API_KEY', _BOTH,
          'NAME of the environment variable holding the API key; the key is never in the config (a value that '
          'is not a variable name is refused)'),
    Field('llm_temperature', float, 0.7, _BOTH, 'sampling temperature', low=0, high=2),
    Field('llm_seed', int, 0, _BOTH, 'seed sent to the endpoint'),
    Field('llm_max_tokens', int, 200, _BOTH, 'longest reply', low=1, high=100_000),
    Field('llm_timeout_seconds', float, 20.0, _BOTH,
          'time budget of one AI decision (connect, 429 retries and the whole reply); a late reply falls back to '
          'the scripted decision (flagged); below ai_collect_deadline_seconds', low=0.001, high=3600),
    Field('llm_persona', str, '', _BOTH, 'optional persona text added to the AI prompt'),
    Field('ai_collect_deadline_seconds', float, 30.0, _BOTH,
          'an AI decision not in by then becomes a flagged scripted fallback', low=0.001, high=3600),
    Field('ai_min_return_seconds', float, 3.0, _BOTH,
          'round feedback / an AI trustee\'s return appears no sooner than this after the choices, in '
          'every treatment (timing must not reveal an AI)', low=0, high=3600),
    # --- partner_selection: compositions (which policy each AI candidate plays) and candidate capacity ---
    Field('ai_candidate_mix', str, '', _PS,
          "comma list, one entry per AI candidate, assigned to A1, A2, … in order (exactly num_ai_candidates "
          "entries: never cycled, so a miscount fails instead of silently changing the mix); an entry is a "
          "scripted preset (ai_partners.scripted.PRESETS) or llm, optionally `:p` for a scripted candidate that "
          "states its intended return in its message and keeps it with probability p (0..1), e.g. "
          "'prosocial_ai:0.9,human_like:0.5,llm'; empty: every AI candidate plays ai_policy / ai_preset"),
    Field('compositions', str, '', _PS,
          "';' list of AI-candidate mixes (each written as ai_candidate_mix) rotated over groups like `treatments` "
          "(group g gets entry g mod n, the same index as its treatment); overrides ai_candidate_mix; empty: every "
          'group plays ai_candidate_mix'),
    Field('candidate_capacity', int, 0, _PS,
          'most selectors one candidate can take per round; 0 = unlimited. Over capacity, choices are kept in a '
          'seeded random order of the selectors (never by kind) and a selector whose card is full is moved at '
          'random to one of its other cards with room (flag `choice_reassigned`, told on the feedback page); no '
          'card with room: no choice that round', low=0, high=100),
    # --- partner_selection: AI selectors (selector seats played by the server, docs/partner_selection.md) ---
    Field('num_ai_selectors', int, 0, _PS,
          'AI selectors per group besides the num_selectors human ones (S1, S2, …; they live on the server, no '
          'seat): they choose among the same cards, by ai_selector_policies', low=0, high=100),
    Field('ai_selector_policies', str, 'learner', _PS,
          'comma list of random, learner, llm, cycled over the AI selectors S1, S2, … (e.g. '
          "'llm,llm,learner'); llm uses the llm_* endpoint fields"),
    Field('ai_selector_model', str, 'rescorla_wagner', _PS,
          "the learner's rule (ai_partners.learning, the rule analysis.learning_models fits)",
          choices=AI_SELECTOR_MODELS),
    Field('ai_selector_params', str, '', _PS,
          'JSON object of the learner\'s parameters, e.g. {"alpha": 0.3, "beta": [2, 10]}: a number is given, '
          'a [low, high] pair is drawn uniformly for each AI selector (seeded by ai_seed); missing: the '
          "model's declared start value; q0 (the starting value) also allowed"),
    Field('ai_selector_fallback', str, 'learner', _PS,
          'what an llm AI selector\'s choice falls back to (flagged) on a fault: timeout, unreachable endpoint, '
          'invalid JSON, a card not offered', choices=AI_SELECTOR_FALLBACKS),
    Field('ai_selector_perceive_ai_above', int, 80, _PS,
          'learner and random AI selectors: without a badge (hidden) a card whose message has more than this many '
          'characters is taken for an AI (what the learner learns about, and its belief guesses)',
          low=0, high=100_000),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}

# The typed object pages read: one attribute per field, plus the parsed treatment rotation.
_SessionConfigBase = make_dataclass(
    '_SessionConfigBase', [(f.name, f.type) for f in FIELDS], frozen=True
)


@dataclass(frozen=True)
class SessionConfig(_SessionConfigBase):
    """A session's config, typed and validated (see FIELDS for what each attribute means)."""

    @property
    def treatment_rotation(self) -> list:
        """Treatments rotated over groups: the comma list in `treatments`, else the single `identity`."""
        return [t.strip() for t in self.treatments.split(',') if t.strip()] or [self.identity]

    @property
    def group_size(self) -> int:
        """Human seats of a partner_selection group (AI candidates have none)."""
        return self.num_selectors + self.num_human_candidates

    @property
    def num_candidates(self) -> int:
        return self.num_human_candidates + self.num_ai_candidates

    @property
    def composition_rotation(self) -> list:
        """AI-candidate mixes rotated over groups: the ';' list in `compositions`, else the single
        `ai_candidate_mix` ('' = every AI candidate plays ai_policy / ai_preset)."""
        return [c.strip() for c in self.compositions.split(';') if c.strip()] or [self.ai_candidate_mix.strip()]

    def ai_candidate_entries(self, composition: str) -> list:
        """One (policy_or_preset, honesty or None) per AI candidate A1, A2, … of a group playing `composition`.
        '' -> every candidate plays ai_policy / ai_preset without a stated intention."""
        if not composition.strip():
            default = 'llm' if self.ai_policy == 'llm' else self.ai_preset
            return [(default, None)] * self.num_ai_candidates
        return [parse_mix_entry(entry) for entry in composition.split(',')]

    @property
    def ai_selector_policy_list(self) -> list:
        """The policies named in `ai_selector_policies`, in order."""
        return [p.strip() for p in self.ai_selector_policies.split(',') if p.strip()]

    def ai_selector_policy_of(self, index: int) -> str:
        """The policy of AI selector S{index} (1-based): the list cycled."""
        policies = self.ai_selector_policy_list
        return policies[(index - 1) % len(policies)]

    @property
    def ai_selector_ids(self) -> list:
        """S1, S2, … one per AI selector of a group."""
        return [f'S{i}' for i in range(1, self.num_ai_selectors + 1)]

    @property
    def uses_llm(self) -> bool:
        """Some AI decision of the session calls the LLM endpoint (candidates, trustees or selectors)."""
        in_mix = any(entry.split(':')[0].strip() == 'llm' for mix in self.composition_rotation for entry in mix.split(','))
        return self.ai_policy == 'llm' or in_mix or (self.num_ai_selectors > 0 and 'llm' in self.ai_selector_policy_list)

    @property
    def elicits_beliefs_in(self) -> tuple:
        """The treatments in which selectors guess kinds: hidden / false_label, when elicit_beliefs."""
        return UNDISCLOSED_IDENTITIES if self.elicit_beliefs else ()


def defaults() -> dict:
    """Every field's default, for settings.SESSION_CONFIG_DEFAULTS."""
    return {f.name: f.default for f in FIELDS}


def _check_value(field: Field, value, problems: list):
    """The value converted to the field's type, or None with a problem added."""
    allowed = field.allowed()
    if field.type is bool:
        if not isinstance(value, bool):
            problems.append(f'{field.name} must be {allowed}, got {value!r}')
            return None
        return value
    if field.type is str:
        if value is None:
            value = ''
        if not isinstance(value, str):
            problems.append(f'{field.name} must be text, got {value!r}')
            return None
        if field.choices and value not in field.choices:
            problems.append(f'{field.name} must be {allowed}, got {value!r}')
            return None
        return value
    # numbers (oTree hands money fields over as its Currency type): bool is an int subclass, and True
    # as "1 point" would hide a form bug; text is not a number even if it reads like one
    if isinstance(value, (bool, str, bytes)) or value is None:
        problems.append(f'{field.name} must be a {allowed}, got {value!r}')
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f'{field.name} must be a {allowed}, got {value!r}')
        return None
    if field.type is int:
        if not number.is_integer():
            problems.append(f'{field.name} must be a {allowed}, got {value!r}')
            return None
        value = int(number)
    else:
        value = number
    if value != value or (field.low is not None and value < field.low) or (
            field.high is not None and value > field.high):
        problems.append(f'{field.name} must be a {allowed}, got {value!r}')
        return None
    return value


def parse(config: Mapping, num_rounds_max: int | None = None) -> SessionConfig:
    """oTree's session config (or any mapping) -> SessionConfig; raises ConfigError naming every bad field.

    Missing fields take their defaults; keys that are not fields (oTree's own: name, app_sequence, …)
    are ignored. `num_rounds_max` is the apps' NUM_ROUNDS (default: max_rounds()).
    """
    source = dict(config or {})
    problems = []
    values = {}
    for field in FIELDS:
        value = _check_value(field, source.get(field.name, field.default), problems)
        values[field.name] = field.default if value is None else value
    rounds_max = max_rounds() if num_rounds_max is None else num_rounds_max
    if values['num_rounds'] > rounds_max:
        problems.append(f"num_rounds must be a whole number 1..{rounds_max} (OTREE_MAX_ROUNDS), "
                        f"got {values['num_rounds']}")
    result = SessionConfig(**values)
    bad = [t for t in result.treatment_rotation if t not in IDENTITIES]
    if bad:
        problems.append(f"treatments must be a comma list of {', '.join(IDENTITIES)}, got unknown {bad}")
    if result.num_candidates < 1:
        problems.append('num_human_candidates + num_ai_candidates must be at least 1, got 0')
    if result.num_candidates > MAX_CANDIDATES:
        problems.append(f'num_human_candidates + num_ai_candidates must be at most {MAX_CANDIDATES} '
                        f'(card letters), got {result.num_candidates}')
    if set(result.elicits_beliefs_in) & set(result.treatment_rotation) and result.num_candidates > MAX_BELIEF_CARDS:
        problems.append(f'with elicit_beliefs in a hidden or false_label treatment, num_human_candidates + '
                        f'num_ai_candidates must be at most {MAX_BELIEF_CARDS} (one guess field per card), '
                        f'got {result.num_candidates}')
    if result.num_human_candidates and result.num_selectors + result.num_ai_selectors > MAX_RETURN_SLOTS:
        problems.append(f'num_selectors + num_ai_selectors must be at most {MAX_RETURN_SLOTS} when there are human '
                        f'candidates (all selectors may choose one human, who has {MAX_RETURN_SLOTS} return fields), '
                        f'got {result.num_selectors + result.num_ai_selectors}')
    problems += ai_selector_problems(result)
    problems += composition_problems(result)
    if result.uses_llm and result.llm_timeout_seconds >= result.ai_collect_deadline_seconds:
        problems.append(f'llm_timeout_seconds must be below ai_collect_deadline_seconds '
                        f'({result.ai_collect_deadline_seconds}), got {result.llm_timeout_seconds}')
    if problems:
        raise ConfigError('session config: ' + '; '.join(problems))
    return result


def parse_mix_entry(entry: str) -> tuple:
    """'human_like:0.5' -> ('human_like', 0.5); 'llm' -> ('llm', None). Raises ValueError for an honesty that
    is not a number."""
    name, _, honesty = entry.strip().partition(':')
    if not honesty.strip():
        return name.strip(), None
    try:
        return name.strip(), float(honesty)
    except ValueError:
        raise ValueError(f'{entry.strip()!r}: the part after ":" must be a probability 0..1') from None


def composition_problems(config: SessionConfig) -> list:
    """What is wrong with ai_candidate_mix / compositions / candidate_capacity; [] if nothing."""
    from ai_partners.scripted import PRESETS  # late: ai_partners itself imports this module

    problems = []
    names = ('llm',) + tuple(PRESETS)
    field = 'compositions' if config.compositions.strip() else 'ai_candidate_mix'
    for mix in config.composition_rotation:
        if not mix.strip():
            continue  # no mix: every AI candidate plays ai_policy / ai_preset, checked under those names
        try:
            entries = config.ai_candidate_entries(mix)
        except ValueError as error:
            problems.append(f'{field} {error}')
            continue
        if len(entries) != config.num_ai_candidates:
            problems.append(f'{field}: {mix!r} names {len(entries)} AI candidate(s), num_ai_candidates is '
                            f'{config.num_ai_candidates} (one entry per AI candidate, never cycled)')
        for name, honesty in entries:
            if name not in names:
                problems.append(f"{field}: {name!r} in {mix!r} is not one of {', '.join(names)}")
            elif honesty is not None and name == 'llm':
                problems.append(f"{field}: {name}:{honesty} in {mix!r}: only scripted candidates state an intention")
            elif honesty is not None and not 0 <= honesty <= 1:
                problems.append(f'{field}: the intention honesty in {mix!r} must be 0..1, got {honesty}')
    num_selectors = config.num_selectors + config.num_ai_selectors
    if config.candidate_capacity and config.candidate_capacity * config.num_candidates < num_selectors:
        problems.append(f'candidate_capacity × (num_human_candidates + num_ai_candidates) must seat every selector '
                        f'({num_selectors}), got {config.candidate_capacity} × {config.num_candidates}')
    return problems


def ai_selector_problems(config: SessionConfig) -> list:
    """What is wrong with the AI-selector fields (policies, the learner's parameters); [] if nothing."""
    from ai_partners.learning import MODELS  # late: ai_partners itself imports this module

    problems = []
    policies = config.ai_selector_policy_list
    unknown = [p for p in policies if p not in AI_SELECTOR_POLICIES]
    if not policies or unknown:
        problems.append(f"ai_selector_policies must be a comma list of {', '.join(AI_SELECTOR_POLICIES)}, "
                        f'got {config.ai_selector_policies!r}')
    if config.num_ai_selectors and 'llm' in policies and urlsplit(config.llm_base_url.strip()).scheme not in (
            'http', 'https'):
        # The value itself is not echoed: a URL may carry user:password@.
        problems.append('llm_base_url must be an http:// or https:// URL when an AI selector uses llm')
    try:
        params = parse_selector_params(config.ai_selector_params)
    except ValueError as error:
        return problems + [f'ai_selector_params {error}']
    declared = dict(MODELS[config.ai_selector_model]().params)
    for name, value in params.items():
        if name == 'q0':
            lower, upper = 0.0, 1.0
        elif name in declared:
            lower, upper = declared[name].lower, declared[name].upper
        else:
            problems.append(f'ai_selector_params: {name!r} is not a parameter of {config.ai_selector_model} '
                            f'(it has {", ".join(declared)}, and q0)')
            continue
        low, high = value if isinstance(value, tuple) else (value, value)
        if not lower <= low <= high <= upper:
            problems.append(f'ai_selector_params: {name} must be a number or a [low, high] pair within '
                            f'{_num(lower)}..{_num(upper)}, got {list(value) if isinstance(value, tuple) else value}')
    return problems


def parse_selector_params(text: str) -> dict:
    """ai_selector_params (JSON text) -> {name: number or (low, high)}; '' is {}. Raises ValueError saying
    what is wrong (not JSON, not an object, a value that is neither a number nor a [low, high] pair)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f'must be a JSON object, e.g. {{"alpha": 0.3, "beta": [2, 10]}}, got {text!r}') from None
    if not isinstance(value, dict):
        raise ValueError(f'must be a JSON object of parameters, got {text!r}')

    def is_number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x

    out = {}
    for name, item in value.items():
        if is_number(item):
            out[name] = float(item)
        elif isinstance(item, list) and len(item) == 2 and all(is_number(x) for x in item) and item[0] <= item[1]:
            out[name] = (float(item[0]), float(item[1]))
        else:
            raise ValueError(f'{name}: a number or a [low, high] pair with low <= high, got {item!r}')
    return out


def markdown_table() -> str:
    """The configuration table of the docs: one row per field."""
    lines = ['| field | app | type | default | allowed | meaning |', '|---|---|---|---|---|---|']
    for f in FIELDS:
        default = repr(f.default) if f.type is str else str(f.default)
        lines.append(f'| `{f.name}` | {f.app} | {f.type.__name__} | `{default}` | {f.allowed()} | {f.meaning} |')
    return '\n'.join(lines) + '\n'
