import time

from otree.api import *

from ai_partners import GameView, broker, make_partner, read_settings
from game_logic.export_schema import AI_CALL_COLUMNS, TRUST_GAME_COLUMNS, json_text
from game_logic.matching import trust_group_matrix
from game_logic.payoffs import InvalidAmount, trust_outcome, validate_return, validate_sent
from game_logic.rounds import cfg, info_timeout, is_last_round, is_played_round, max_rounds, page_timeout
from game_logic.society import badge_for

doc = """
Repeated investment (trust) game with an ASSIGNED partner: the baseline to the partner-selection game.
Each round the trustor gets an endowment and sends any whole number of points to the trustee; the
amount is multiplied and the trustee returns any whole number of points up to what it received
(Berg, Dickhaut & McCabe 1995, "Trust, reciprocity, and social history", Games and Economic Behavior
10:122–142). The trustee is another participant or a server-side AI partner (session config `partner`),
and its kind is disclosed, hidden or falsely labelled (`identity`): the manipulation of Ishowo-Oloko et
al. (2019, Nature Machine Intelligence, "Behavioural evidence for a transparency–efficiency tradeoff in
human–machine cooperation"), where a partner was assigned rather than chosen.
"""


class C(BaseConstants):
    NAME_IN_URL = 'trust_game'
    # Groups are set each round from the session config (pairs, or a trustor alone with an AI).
    PLAYERS_PER_GROUP = None
    # Upper bound; the session config's num_rounds decides how many rounds are played.
    NUM_ROUNDS = max_rounds()  # OTREE_MAX_ROUNDS, default 20: see game_logic/rounds.py
    # oTree assigns roles by id_in_group: 1 = trustor, 2 = trustee (human trustee only).
    TRUSTOR_ROLE = 'trustor'
    TRUSTEE_ROLE = 'trustee'
    # Session-config values accepted for the two treatment dimensions.
    PARTNER_KINDS = ('human', 'ai')
    IDENTITIES = ('disclosed', 'hidden', 'false_label')


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    """One trustor and its trustee in one round (the trustee may be an AI that lives on the server)."""

    identity = models.StringField(doc='disclosed | hidden | false_label')
    partner_kind = models.StringField(doc='true kind of the trustee: human | ai')
    label_shown = models.StringField(doc='what the trustor is told about the trustee: AI, Human or empty')
    ai_trustee_id = models.StringField(initial='', doc='id of the AI trustee (empty for a human trustee)')
    sent_amount = models.IntegerField(label='How many points do you send to your partner?')
    sent_back_amount = models.IntegerField(label='How many points do you return to your partner?')
    send_timed_out = models.BooleanField(initial=False, doc='trustor did not decide in time; 0 was sent')
    return_timed_out = models.BooleanField(
        initial=False, doc='trustee did not decide in time (human page timeout or AI deadline); 0 returned'
    )
    return_fallback = models.BooleanField(initial=False, doc="AI return came from the scripted fallback")
    ai_requested_at = models.FloatField(initial=0, doc='epoch seconds the AI return was requested')
    settled = models.BooleanField(initial=False, doc='return in and payoffs set')
    trustee_payoff = models.IntegerField(initial=0, doc='points of the trustee (human or AI) this round')


class Player(BasePlayer):
    pass


class AICall(ExtraModel):
    """Every AI trustee decision as made: who decided, what it was asked, what it answered, what was used."""

    group = models.Link(Group)
    round_number = models.IntegerField()
    trustee_id = models.StringField()
    trustor_code = models.StringField()
    decision = models.StringField()
    value = models.IntegerField()
    policy = models.StringField()
    model = models.StringField()
    endpoint_host = models.StringField()
    prompt = models.LongStringField()
    raw_reply = models.LongStringField()
    latency_ms = models.FloatField()
    prompt_tokens = models.IntegerField()
    completion_tokens = models.IntegerField()
    fallback = models.BooleanField()
    fallback_reason = models.StringField()


# FUNCTIONS
def check_trust_config(config: dict) -> None:
    """Raise ValueError naming every trust_game session-config field that cannot be played."""
    problems = []
    if config.get('partner') not in C.PARTNER_KINDS:
        problems.append(f"partner must be one of {C.PARTNER_KINDS}, got {config.get('partner')!r}")
    if config.get('identity') not in C.IDENTITIES:
        problems.append(f"identity must be one of {C.IDENTITIES}, got {config.get('identity')!r}")
    limits = dict(num_rounds=(1, C.NUM_ROUNDS), endowment=(0, None), multiplier=(1, None),
                  page_timeout_seconds=(0, None), info_page_timeout_seconds=(0, None))
    for name, (low, high) in limits.items():
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            allowed = f'{low}..{high}' if high else f'>= {low}'
            problems.append(f'{name} must be a whole number {allowed}, got {value!r}')
    if problems:
        raise ValueError('trust_game session config: ' + '; '.join(problems))


def creating_session(subsession: Subsession):
    config = cfg(subsession)
    check_trust_config(config)
    read_settings(config)  # a bad AI setting fails here, not at the first AI decision
    if subsession.round_number > config['num_rounds']:
        return  # never played: oTree's default single group is left alone (regrouping is slow)
    matrix = trust_group_matrix(
        len(subsession.get_players()), subsession.round_number, config['partner'], bool(config['rematch'])
    )
    subsession.set_group_matrix(matrix)
    for group in subsession.get_groups():
        group.identity = config['identity']
        group.partner_kind = config['partner']
        group.label_shown = badge_for(config['partner'], config['identity'])
        if config['partner'] == 'ai':
            group.ai_trustee_id = ai_trustee_id(group)


def ai_trustee_id(group: Group) -> str:
    """A{n}: the AI partner of participant n; with rematch a new AI each round (A{n}r{round})."""
    trustor = group.get_player_by_id(1)
    base = f'A{trustor.participant.id_in_session}'
    return f'{base}r{group.round_number}' if cfg(group)['rematch'] else base


def trustor_of(group: Group) -> Player:
    return group.get_player_by_role(C.TRUSTOR_ROLE)


def amount_received(group: Group) -> int:
    return (group.field_maybe_none('sent_amount') or 0) * cfg(group)['multiplier']


def ai_partner(group: Group):
    return make_partner(cfg(group), f'{group.session.code}-{group.ai_trustee_id}')


def ai_view(group: Group) -> GameView:
    """What the AI trustee sees: this round and, with a fixed partner, its own past rounds with this trustor."""
    config = cfg(group)
    history = []
    if not config['rematch']:
        for past in trustor_of(group).in_previous_rounds():
            g = past.group
            history.append(dict(round=g.round_number, times_chosen=1, sent=g.sent_amount,
                                received=amount_received(g), returned=g.sent_back_amount))
    return GameView(
        role='trustee',
        round_number=group.round_number,
        num_rounds=config['num_rounds'],
        endowment=config['endowment'],
        multiplier=config['multiplier'],
        max_message_length=config['max_message_length'],
        identity=group.identity,
        shown_as=group.label_shown,
        history=history,
    )


def ai_return_kwargs(group: Group) -> dict:
    return dict(amount_sent=group.sent_amount, amount_received=amount_received(group),
                counterpart=trustor_of(group).participant.code)


def broker_key(group: Group) -> str:
    return f'{group.session.code}-{group.ai_trustee_id}-r{group.round_number}-return'


def needs_ai_return(group: Group) -> bool:
    # Nothing received, nothing to decide: no AI call (and no LLM cost) for a return that must be 0.
    return group.partner_kind == 'ai' and amount_received(group) > 0


def start_ai_return(group: Group):
    """Ask the AI trustee in the background; the answer is collected at the results wait page."""
    group.ai_requested_at = time.time()
    if needs_ai_return(group):
        broker.start(broker_key(group), ai_partner(group), 'return', ai_view(group), **ai_return_kwargs(group))


def has_bots(group: Group) -> bool:
    # oTree's command-line bots cannot run the gate page's JavaScript; for them collection blocks.
    return any(p.participant._is_bot for p in group.get_players())


def ai_return_ready(group: Group) -> bool:
    """The AI's answer is in (or its deadline passed) and the minimum delay is over.

    The minimum delay (ai_min_return_seconds) is the same in every identity treatment, so neither an
    instant reply nor a treatment difference in waiting can tell the trustor what the partner is.
    """
    config = cfg(group)
    if time.time() < group.ai_requested_at + config.get('ai_min_return_seconds', 0):
        return False
    return not needs_ai_return(group) or broker.collectable(
        [broker_key(group)], group.ai_requested_at, config['ai_collect_deadline_seconds']
    )


def record_ai_call(group: Group, decision) -> None:
    row = decision.as_row()
    AICall.create(
        group=group,
        round_number=group.round_number,
        trustee_id=group.ai_trustee_id,
        trustor_code=trustor_of(group).participant.code,
        decision=row['decision'],
        value=int(row['value']),
        policy=row['policy'],
        model=row['model'] or '',
        endpoint_host=row['endpoint_host'] or '',
        prompt=row['prompt'] or '',
        raw_reply=row['raw_reply'] or '',
        latency_ms=float(row['latency_ms'] or 0),
        prompt_tokens=row['prompt_tokens'],
        completion_tokens=row['completion_tokens'],
        fallback=bool(row['fallback']),
        fallback_reason=row['fallback_reason'] or '',
    )


def collect_ai_return(group: Group, wait: bool):
    """Store the AI trustee's return; wait=True blocks until the deadline (bots), else it is taken as is."""
    if not needs_ai_return(group):
        group.sent_back_amount = 0
        return
    seconds_left = broker.seconds_left(group.ai_requested_at, cfg(group)['ai_collect_deadline_seconds'])
    decision = broker.collect(
        broker_key(group), ai_partner(group), 'return', ai_view(group),
        deadline_seconds=seconds_left if wait else 0, **ai_return_kwargs(group),
    )
    record_ai_call(group, decision)
    group.sent_back_amount = decision.value
    group.return_fallback = decision.fallback
    group.return_timed_out = decision.fallback_reason in ('deadline', 'timeout')


def set_payoffs(group: Group):
    """Pay trustor and trustee with the shared Berg–Dickhaut–McCabe arithmetic."""
    config = cfg(group)
    if group.field_maybe_none('sent_back_amount') is None:
        group.sent_back_amount = 0  # nothing was received, so nothing could be returned
    outcome = trust_outcome(config['endowment'], group.sent_amount, config['multiplier'], group.sent_back_amount)
    trustor_of(group).payoff = outcome.sender_payoff
    group.trustee_payoff = outcome.receiver_payoff
    if group.partner_kind == 'human':
        group.get_player_by_role(C.TRUSTEE_ROLE).payoff = outcome.receiver_payoff
    group.settled = True


def try_settle(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Settle the round once the return is in; never blocks a person (see ai_partners.background).

    Returns True when payoffs are set. wait: block until the AI deadline (bots only); force: settle now,
    an unfinished AI call becoming a flagged fallback.
    """
    if group.settled:
        return True
    if group.partner_kind == 'ai':
        # Sending nothing is answered after the same minimum delay: the wait must not depend on the amount.
        if not (wait or force or ai_return_ready(group)):
            return False
        collect_ai_return(group, wait)
    set_payoffs(group)
    return True


def round_arrived(group: Group):
    try_settle(group, wait=has_bots(group))


def describe_partner(label: str, ai_description: str) -> str:
    """What the trustor is told its partner is, from the label the treatment shows."""
    if label == 'AI':
        return f'an AI agent ({ai_description})'
    if label == 'Human':
        return 'another participant in this study'
    return f'either another participant or an AI agent ({ai_description}); you will not be told which'


def common_vars(player: Player) -> dict:
    config = cfg(player)
    group = player.group
    return dict(
        endowment=config['endowment'],
        multiplier=config['multiplier'],
        max_received=config['endowment'] * config['multiplier'],
        num_rounds=config['num_rounds'],
        rematch=bool(config['rematch']),
        is_trustor=player.role == C.TRUSTOR_ROLE,
        partner_label=group.label_shown,
        partner_description=describe_partner(group.label_shown, read_settings(config).ai_description),
    )


def round_summary(player: Player) -> dict:
    group = player.group
    return dict(
        round=player.round_number,
        sent=group.sent_amount,
        received=amount_received(group),
        returned=group.sent_back_amount,
        payoff=player.payoff,
        send_timed_out=group.send_timed_out,
        return_timed_out=group.return_timed_out,
        label=group.label_shown,
    )


# PAGES
class Instructions(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1

    @staticmethod
    def vars_for_template(player: Player):
        return common_vars(player)


class Send(Page):
    form_model = 'group'
    form_fields = ['sent_amount']
    get_timeout_seconds = page_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and player.role == C.TRUSTOR_ROLE

    @staticmethod
    def vars_for_template(player: Player):
        return common_vars(player)

    @staticmethod
    def error_message(player: Player, values):
        endowment = cfg(player)['endowment']
        try:
            validate_sent(values.get('sent_amount'), endowment)
        except InvalidAmount:
            return dict(sent_amount=f'Please enter a whole number of points from 0 to {endowment}.')

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        group = player.group
        if timeout_happened:
            # Whatever the auto-submitted form held is not a decision: 0 sent, and flagged.
            group.send_timed_out = True
            group.sent_amount = 0
        if group.partner_kind == 'ai':
            start_ai_return(group)


class SendWaitPage(WaitPage):
    title_text = 'Please wait'
    body_text = 'Waiting for your partner to decide.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and player.group.partner_kind == 'human'


class Return(Page):
    form_model = 'group'
    form_fields = ['sent_back_amount']
    get_timeout_seconds = page_timeout

    @staticmethod
    def is_displayed(player: Player):
        group = player.group
        return is_played_round(player) and player.role == C.TRUSTEE_ROLE and amount_received(group) > 0

    @staticmethod
    def vars_for_template(player: Player):
        return dict(common_vars(player), sent=player.group.sent_amount, received=amount_received(player.group))

    @staticmethod
    def error_message(player: Player, values):
        received = amount_received(player.group)
        try:
            validate_return(values.get('sent_back_amount'), received)
        except InvalidAmount:
            return dict(sent_back_amount=f'Please enter a whole number of points from 0 to {received}.')

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        if timeout_happened:
            player.group.return_timed_out = True
            player.group.sent_back_amount = 0


class ResultsWaitPage(WaitPage):
    after_all_players_arrive = round_arrived
    title_text = 'Please wait'
    body_text = 'Waiting for your partner to decide how many points to return.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)


class AIReturnGate(Page):
    """Shown only while the AI's return is still on its way: looks like a wait page, polls, moves on."""

    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and not player.group.settled

    @staticmethod
    def live_method(player: Player, data):
        return {player.id_in_group: dict(ready=try_settle(player.group))}

    @staticmethod
    def error_message(player: Player, values):
        if not try_settle(player.group):
            return 'Still waiting for your partner. Please wait a moment.'

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        try_settle(player.group, force=True)


class Results(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)

    @staticmethod
    def vars_for_template(player: Player):
        return dict(common_vars(player), **round_summary(player))


class Debrief(Page):
    """After the last round of a hidden or false-label session: who the partner really was."""

    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_last_round(player) and player.group.identity in ('hidden', 'false_label')

    @staticmethod
    def vars_for_template(player: Player):
        group = player.group
        # What the partner is, described as a truthful label would describe it.
        partner_was = describe_partner(badge_for(group.partner_kind, 'disclosed'),
                                       read_settings(cfg(player)).ai_description)
        return dict(
            common_vars(player),
            identity=group.identity,
            partner_was=partner_was,
            label_shown=group.label_shown,
        )


class Payment(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_last_round(player)

    @staticmethod
    def vars_for_template(player: Player):
        pp = player.participant
        played = player.in_rounds(1, cfg(player)['num_rounds'])
        return dict(
            common_vars(player),
            rounds=[round_summary(p) for p in played],
            points=pp.payoff,
            money_from_points=pp.payoff.to_real_world_currency(player.session),
            participation_fee=cfg(player)['participation_fee'],
            total=pp.payoff_plus_participation_fee(),
        )


page_sequence = [
    Instructions,
    Send,
    SendWaitPage,
    Return,
    ResultsWaitPage,
    AIReturnGate,
    Results,
    Debrief,
    Payment,
]


# EXPORTS
def _played_groups(players) -> list:
    groups = {}
    for p in players:
        if p.round_number <= p.session.config['num_rounds']:
            groups[p.group.id] = p.group
    return sorted(groups.values(), key=lambda g: (g.session.code, g.round_number, g.id_in_subsession))


def _flag(value) -> int:
    return int(bool(value))




def export_row(group: Group) -> list:
    """One trustor × round; decisions not yet made (session still running) are empty cells."""
    trustor = trustor_of(group)
    # A timed-out Send holds 0 for the payoff arithmetic, but it is no decision: an empty cell.
    sent = None if group.send_timed_out else group.field_maybe_none('sent_amount')
    settled = group.settled
    trustee_id = group.get_player_by_role(C.TRUSTEE_ROLE).participant.code if group.partner_kind == 'human' else ''
    return [
        group.session.code,
        group.round_number,
        group.id_in_subsession,
        group.identity,
        group.partner_kind,
        group.label_shown,
        trustor.participant.code,
        trustee_id,
        '' if sent is None else sent,
        cfg(group)['multiplier'],
        '' if sent is None else amount_received(group),
        group.sent_back_amount if settled and sent is not None else '',
        int(trustor.payoff) if settled else '',
        group.trustee_payoff if settled else '',
        _flag(group.send_timed_out),
        _flag(group.return_timed_out),
        _flag(group.return_fallback),
    ]


def custom_export(players):
    """Decisions: one row per trustor × played round (columns: README, "trust_game: custom_export")."""
    yield TRUST_GAME_COLUMNS
    for group in _played_groups(players):
        yield export_row(group)




def custom_export_ai_calls(players):
    """AI calls: one row per AI trustee decision (columns: README, "AI calls"); group_id is the pair id."""
    yield AI_CALL_COLUMNS
    for group in _played_groups(players):
        for call in sorted(AICall.filter(group=group), key=lambda c: c.id):
            yield [
                group.session.code, group.id_in_subsession, call.round_number, 'trust_game', call.trustee_id,
                call.decision, call.policy, call.model, call.endpoint_host, json_text(call.prompt),
                json_text(call.raw_reply), call.value, round(call.latency_ms, 1), call.prompt_tokens,
                call.completion_tokens, _flag(call.fallback), call.fallback_reason,
            ]
