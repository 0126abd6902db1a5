"""Background AI decisions at the oTree boundary, one implementation for both games.

oTree's production server handles one request at a time, so an AI decision (an LLM call) is started in
the background when it becomes due (`start`) and collected later (`collect`): on an `AIGate` page, or
with bots (which cannot run the gate's script) on a wait page's after_all_players_arrive. Every decision
is stored as an AICall row (`ai_call_model`), and exported by `ai_call_rows`.
"""
import json
import time

from otree.api import ExtraModel, Page, models

from ai_partners import broker
from game_logic.export_schema import json_text

from .config import config_of, info_timeout
from .export import flag
from .text import clean_text

FALLBACK_TIMED_OUT = ('deadline', 'timeout')


def ai_call_model(group_model, app_name: str):
    """The AICall ExtraModel of one app (its table is `<app>_aicall`): every AI decision as made, who
    decided, for whom, what it was asked, what it answered, what was used."""
    fields = dict(
        __module__=app_name,  # oTree names the table after the module's app
        __doc__=ai_call_model.__doc__,
        group=models.Link(group_model),
        round_number=models.IntegerField(),
        candidate_id=models.StringField(doc='the AI: candidate id, AI selector id (S1, …), or trustee id (trust_game)'),
        counterpart=models.StringField(doc='participant code of the selector / trustor, for returns'),
        decision=models.StringField(),
        policy=models.StringField(),
        model=models.StringField(),
        endpoint_host=models.StringField(),
        prompt=models.LongStringField(),
        raw_reply=models.LongStringField(),
        parsed_value=models.LongStringField(),
        latency_ms=models.FloatField(),
        prompt_tokens=models.IntegerField(),
        completion_tokens=models.IntegerField(),
        fallback=models.BooleanField(),
        fallback_reason=models.StringField(),
    )
    return type('AICall', (ExtraModel,), fields)


def has_bots(player_or_group) -> bool:
    """The session is played by oTree's command-line bots, which cannot run a gate page's JavaScript (for
    them collection blocks). A bot session is bots only, so one participant tells: the player's own, or a
    group's first member's (reading every member's participant cost a query each on every page a gate's
    is_displayed was asked about). Not kept per session: oTree marks the participants as bots only after
    the session was created (bots/runner.py)."""
    if hasattr(player_or_group, 'participant'):
        return bool(player_or_group.participant._is_bot)
    players = player_or_group.get_players()
    return bool(players) and bool(players[0].participant._is_bot)


def start(key: str, partner, decision: str, view, **kwargs) -> None:
    """Start one AI decision in the background; returns at once."""
    broker.start(key, partner, decision, view, **kwargs)


def ready(group, keys: list, requested_at: float) -> bool:
    """Every background decision finished, was lost in a restart, or its deadline passed."""
    return broker.collectable(keys, requested_at, config_of(group).ai_collect_deadline_seconds)


def min_delay_over(group, since: float) -> bool:
    """ai_min_return_seconds have passed since `since`: the same wait in every identity treatment, so
    neither an instant reply nor a treatment difference in waiting can tell a participant it is an AI."""
    return time.time() >= since + config_of(group).ai_min_return_seconds


def collect(AICall, group, key: str, partner, decision: str, view, *, candidate_id: str, requested_at: float,
            wait: bool, **kwargs):
    """The decision (an AIDecision), stored as an AICall row. kwargs as for `start`.

    wait=True blocks for the rest of the deadline (bots only); otherwise what is not finished becomes a
    flagged scripted fallback at once. Never raises on a partner failure.
    """
    deadline = config_of(group).ai_collect_deadline_seconds
    seconds = broker.seconds_left(requested_at, deadline) if wait else 0
    result = broker.collect(key, partner, decision, view, deadline_seconds=seconds, **kwargs)
    row = result.as_row()
    # PostgreSQL refuses NUL in text: an LLM's raw reply keeps every other character, NUL written as \u0000;
    # a message is stored as it was used (clean_text, as the app stores the candidate's message); an AI
    # selector's choice as its JSON object.
    if decision == 'message':
        value = clean_text(str(row['value']))
    elif decision == 'choice':
        value = json.dumps(row['value'], ensure_ascii=False, sort_keys=True)
    else:
        value = str(row['value'])
    AICall.create(
        group=group,
        round_number=group.round_number,
        candidate_id=candidate_id,
        counterpart=kwargs.get('counterpart', ''),
        decision=row['decision'],
        policy=row['policy'],
        model=row['model'] or '',
        endpoint_host=row['endpoint_host'] or '',
        prompt=without_nul(row['prompt']),
        raw_reply=without_nul(row['raw_reply']),
        parsed_value=value,
        latency_ms=float(row['latency_ms'] or 0),
        prompt_tokens=row['prompt_tokens'],
        completion_tokens=row['completion_tokens'],
        fallback=bool(row['fallback']),
        fallback_reason=row['fallback_reason'] or '',
    )
    return result


def without_nul(text) -> str:
    return (text or '').replace('\x00', '\\u0000')


def timed_out(decision) -> bool:
    """The AI did not answer in time (its value is the fallback's)."""
    return decision.fallback_reason in FALLBACK_TIMED_OUT


def value_used(decision, what: str):
    """What the game uses of an AI decision: one not made in time counts as a human's timed-out one (an
    empty message, 0 returned), the same rule for both kinds, so that in hidden/false_label neither the
    value nor the timeout notice can tell them apart. The AI-calls export keeps the fallback's value."""
    if timed_out(decision):
        return '' if what == 'message' else 0
    return decision.value


def ai_call_rows(AICall, app_name: str, groups):
    """Export rows (dicts keyed by export_schema.AI_CALL_COLUMNS), one per AI decision."""
    for group in groups:
        for call in sorted(AICall.filter(group=group), key=lambda c: c.id):
            # A message as a JSON string literal (newlines survive the CSV); a return as its whole number; an
            # AI selector's choice as its JSON object (card, amount, beliefs, reason).
            if call.decision == 'message':
                parsed = json_text(call.parsed_value)
            elif call.decision == 'choice':
                parsed = call.parsed_value
            else:
                parsed = int(call.parsed_value)
            yield dict(
                session_code=group.session.code, group_id=group.id_in_subsession, round=call.round_number,
                app=app_name, candidate_id=call.candidate_id, decision=call.decision, policy=call.policy,
                model=call.model, endpoint_host=call.endpoint_host, prompt_json=json_text(call.prompt),
                raw_reply_json=json_text(call.raw_reply), parsed_value=parsed,
                latency_ms=round(call.latency_ms, 1), prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens, fallback=flag(call.fallback),
                fallback_reason=call.fallback_reason,
            )


class AIGate(Page):
    """A page that looks like a wait page and moves on by itself once decisions are in, asking the server
    once, at the moment the gate can open (no polling). A subclass decides when it is shown: the returns
    gates always (the pages a participant passes must not depend on who was chosen), the messages gate
    while AI messages are still on their way.

    The page is rendered with `gate_remaining_ms` (js_vars; named as a timer, since it changes from one
    rendering to the next): 0 when the gate is open already (its request then opens it for everyone of
    the group on it), else the time until it can open (the end of ai_min_return_seconds for a gate that
    holds it; else the first back-off). At that time it sends one live request; the server answers
    `advance` (the decisions are in and collected: the page submits itself, once) or when to ask again:
    at doubling intervals from
    GATE_FIRST_RETRY_SECONDS up to GATE_MAX_RETRY_SECONDS, never past the collect deadline, after which
    the fallback makes the gate ready. A request left unanswered for GATE_SAFETY_SECONDS (a lost
    connection) submits the form, whose check asks the server again.

    A subclass defines `advance(group, force=False) -> bool` (collect or settle when ready; force: now,
    unfinished calls becoming flagged fallbacks), `requested_at(group)` (epoch seconds the decisions were
    requested), `holds_min_delay` and `wait_text`. The gate's timing depends only on the clock and on
    when the decisions (AI or human) are in, never on a candidate's true kind (see `min_delay_over`).
    """

    template_name = 'study/AIGate.html'
    get_timeout_seconds = info_timeout
    wait_text = 'Waiting for the other participants…'
    not_ready_text = 'Still waiting for the other participants. Please wait a moment.'
    holds_min_delay = False

    @staticmethod
    def advance(group, force: bool = False) -> bool:
        raise NotImplementedError

    @staticmethod
    def requested_at(group) -> float:
        raise NotImplementedError

    @staticmethod
    def awaits_people(group) -> bool:
        """A person's decision the gate waits for is not in yet. That person comes to the gate after deciding,
        and their request opens it for everyone of the group on it, so the others need not ask often."""
        return False

    @classmethod
    def is_open(cls, player) -> bool:
        """The gate would let the participant through now (collecting what is ready): then it is not shown."""
        return cls.advance(player.group)

    @classmethod
    def seconds_to_ask(cls, group, attempt: int = 0, now: float = None) -> float:
        """When to ask the server (again), from now: the release (min-delay end) if still ahead, else the
        attempt's back-off (1, 2, 4, 4 … s; GATE_PEOPLE_RETRY_SECONDS while a person's decision is missing),
        cut at the collect deadline."""
        return gate_seconds_to_ask(group, cls.requested_at(group), cls.holds_min_delay, attempt, now,
                                   people_pending=cls.awaits_people(group))

    @classmethod
    def vars_for_template(cls, player):
        return dict(wait_text=cls.wait_text)

    @classmethod
    def js_vars(cls, player):
        seconds = 0.0 if cls.is_open(player) else cls.seconds_to_ask(player.group)
        return dict(gate_remaining_ms=round(1000 * seconds),
                    gate_safety_ms=round(1000 * GATE_SAFETY_SECONDS))

    @classmethod
    def live_method(cls, player, data):
        if cls.advance(player.group):
            # Everyone of the group on this gate may go: whoever has not asked yet need not.
            return {0: dict(advance=True)}
        attempt = data.get('attempt', 0) if isinstance(data, dict) else 0
        attempt = attempt if isinstance(attempt, int) and 0 <= attempt < 64 else 0
        return {player.id_in_group: dict(advance=False,
                                         ask_in_ms=round(1000 * cls.seconds_to_ask(player.group, attempt)))}

    @classmethod
    def error_message(cls, player, values):
        if not cls.advance(player.group):
            return cls.not_ready_text

    @classmethod
    def before_next_page(cls, player, timeout_happened):
        # An unattended page (browser closed) still must not hold the group: use what is there.
        cls.advance(player.group, force=True)


# The gate's first re-ask after its release, doubled on each further one up to the most (so that an AI
# a little late costs few requests, and one very late keeps nobody waiting long after it is in); and how
# long a live request may stay unanswered before the page submits its form instead (a lost connection).
GATE_FIRST_RETRY_SECONDS = 1.0
GATE_MAX_RETRY_SECONDS = 4.0
GATE_SAFETY_SECONDS = 10.0
# While a person's decision is missing (AIGate.awaits_people): their own request opens the gate for all, so
# the others ask this seldom; it covers a person who never comes (a closed browser whose page oTree's
# timeout worker submitted). Measured: 3.9 live requests per gate visit at 15 s think time before.
GATE_PEOPLE_RETRY_SECONDS = 10.0
# Asked this long after the computed moment, so that a request never arrives a little too early.
GATE_MARGIN_SECONDS = 0.05


def gate_seconds_to_ask(group, requested_at: float, holds_min_delay: bool, attempt: int = 0,
                        now: float = None, people_pending: bool = False) -> float:
    """Seconds from `now` until an AI gate should ask the server whether it may open (see AIGate)."""
    now = time.time() if now is None else now
    config = config_of(group)
    release = requested_at + (config.ai_min_return_seconds if holds_min_delay else 0)
    if now < release:
        return release - now + GATE_MARGIN_SECONDS
    deadline = requested_at + config.ai_collect_deadline_seconds
    if people_pending:
        back_off = GATE_PEOPLE_RETRY_SECONDS
    else:
        back_off = min(GATE_FIRST_RETRY_SECONDS * 2 ** min(attempt, 16), GATE_MAX_RETRY_SECONDS)
    return max(0.0, min(back_off, deadline - now)) + GATE_MARGIN_SECONDS
