import time

from otree.api import *

from ai_partners import GameView, make_partner
from game_logic import session_config
from game_logic.matching import trust_group_matrix
from game_logic.payoffs import InvalidAmount, trust_outcome, validate_return, validate_sent
from game_logic.society import badge_for
from study import ai_decisions, journey
from study.config import GameConstants, ai_settings_of, build_config, config_of, game_vars, is_last_round
from study.config import is_played_round
from study.forms import CleanInputPage
from study.pages import DecisionPage, InfoPage

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


class C(GameConstants):  # PLAYERS_PER_GROUP = None, NUM_ROUNDS = OTREE_MAX_ROUNDS (study/config.py)
    NAME_IN_URL = 'trust_game'
    # Groups are set each round from the session config: pairs, or a trustor alone with an AI.
    # oTree assigns roles by id_in_group: 1 = trustor, 2 = trustee (human trustee only).
    TRUSTOR_ROLE = 'trustor'
    TRUSTEE_ROLE = 'trustee'


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    """One trustor and its trustee in one round (the trustee may be an AI that lives on the server)."""

    identity = models.StringField(doc='disclosed | hidden | false_label')
    partner_kind = models.StringField(doc='true kind of the trustee: human | ai')
    label_shown = models.StringField(doc='what the trustor is told about the trustee: AI, Human or empty')
    ai_trustee_id = models.StringField(initial='', doc='id of the AI trustee (empty for a human trustee)')
    sent_amount = models.IntegerField(min=0, max=C.MAX_SENT, label='How many points do you send to your partner?')
    sent_back_amount = models.IntegerField(
        min=0, max=C.MAX_RECEIVED, label='How many points do you return to your partner?'
    )
    send_timed_out = models.BooleanField(initial=False, doc='trustor did not decide in time; 0 was sent')
    return_timed_out = models.BooleanField(
        initial=False, doc='trustee did not decide in time (human page timeout or AI deadline); 0 returned'
    )
    return_fallback = models.BooleanField(initial=False, doc="AI return came from the scripted fallback")
    ai_requested_at = models.FloatField(
        initial=0, doc='epoch seconds the return was asked for (the Send), for an AI or a human trustee')
    settled = models.BooleanField(initial=False, doc='return in and payoffs set')
    trustee_payoff = models.IntegerField(initial=0, doc='points of the trustee (human or AI) this round')


class Player(BasePlayer):
    pass


AICall = ai_decisions.ai_call_model(Group, __name__)


# FUNCTIONS
def creating_session(subsession: Subsession):
    config = build_config(subsession.session, C.NUM_ROUNDS)  # every bad field fails here
    if subsession.round_number > config.num_rounds:
        return  # never played: oTree's default single group is left alone (regrouping is slow)
    # The session's headcount must pair up; the pairs are formed again among the qualified (form_pairs).
    trust_group_matrix(len(subsession.get_players()), subsession.round_number, config.partner, config.rematch)


def form_pairs(subsession: Subsession):
    """PairingWaitPage, once everybody has qualified in the intro app or left: the qualified in participant
    order are paired (partner=human; an odd one out leaves, reason left_over) or each plays an AI, for every
    played round; those routed out sit in one group of their own that never plays."""
    config = config_of(subsession)
    players = sorted(subsession.get_players(), key=lambda p: p.participant.id_in_session)
    qualified = [p for p in players if not journey.peek(p.participant, 'excluded')]
    if config.partner == 'human' and len(qualified) % 2:
        journey.exclude(qualified[-1].participant, 'left_over')
        qualified = qualified[:-1]
    ids = [p.id_in_subsession for p in qualified]
    out = [p.id_in_subsession for p in players if journey.peek(p.participant, 'excluded')]
    for round_number in range(1, config.num_rounds + 1):
        pairs = trust_group_matrix(len(ids), round_number, config.partner, config.rematch) if ids else []
        matrix = [[ids[i - 1] for i in pair] for pair in pairs]
        current = subsession.in_round(round_number)
        current.set_group_matrix(matrix + ([out] if out else []))
        for group in current.get_groups()[:len(matrix)]:
            set_up_pair(group, config)


def set_up_pair(group: Group, config):
    group.identity = config.identity
    group.partner_kind = config.partner
    group.label_shown = badge_for(config.partner, config.identity)
    if config.partner == 'ai':
        group.ai_trustee_id = ai_trustee_id(group)


def is_played_group(group: Group) -> bool:
    """A pair (or trustor with an AI) that plays; the group of those routed out does not."""
    return bool(group.field_maybe_none('partner_kind'))


def ai_trustee_id(group: Group) -> str:
    """A{n}: the AI partner of participant n; with rematch a new AI each round (A{n}r{round})."""
    trustor = group.get_player_by_id(1)
    base = f'A{trustor.participant.id_in_session}'
    return f'{base}r{group.round_number}' if config_of(group).rematch else base


def trustor_of(group: Group) -> Player:
    return group.get_player_by_role(C.TRUSTOR_ROLE)


def amount_received(group: Group) -> int:
    return (group.field_maybe_none('sent_amount') or 0) * config_of(group).multiplier


def ai_partner(group: Group):
    return make_partner(ai_settings_of(group), f'{group.session.code}-{group.ai_trustee_id}')


def ai_view(group: Group) -> GameView:
    """What the AI trustee sees: this round and, with a fixed partner, its own past rounds with this trustor."""
    config = config_of(group)
    history = []
    if not config.rematch:
        for past in trustor_of(group).in_previous_rounds():
            g = past.group
            history.append(dict(round=g.round_number, times_chosen=1, sent=g.sent_amount,
                                received=amount_received(g), returned=g.sent_back_amount))
    return GameView(
        role='trustee',
        round_number=group.round_number,
        num_rounds=config.num_rounds,
        endowment=config.endowment,
        multiplier=config.multiplier,
        max_message_length=config.max_message_length,
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


def ask_for_return(group: Group):
    """The trustor has sent: the return is asked for now, from an AI in the background (collected on the
    ReturnGate or, with bots, ResultsWaitPage); the minimum delay counts from now for both kinds."""
    group.ai_requested_at = time.time()
    if needs_ai_return(group):
        ai_decisions.start(broker_key(group), ai_partner(group), 'return', ai_view(group), **ai_return_kwargs(group))


def human_return_in(group: Group) -> bool:
    """The human trustee has decided (or its page timed out), or received nothing and has nothing to decide."""
    return amount_received(group) == 0 or group.field_maybe_none('sent_back_amount') is not None


def return_ready(group: Group) -> bool:
    """The return is in and the minimum delay since the Send is over, whoever the trustee is: the trustor's
    wait must not tell an AI from a human (also after sending nothing: nor depend on the amount)."""
    if not ai_decisions.min_delay_over(group, group.ai_requested_at):
        return False
    if group.partner_kind == 'human':
        return human_return_in(group)
    return not needs_ai_return(group) or ai_decisions.ready(group, [broker_key(group)], group.ai_requested_at)


def collect_ai_return(group: Group, wait: bool):
    """Store the AI trustee's return; wait=True blocks until the deadline (bots), else it is taken as is."""
    if not needs_ai_return(group):
        group.sent_back_amount = 0
        return
    decision = ai_decisions.collect(
        AICall, group, broker_key(group), ai_partner(group), 'return', ai_view(group),
        candidate_id=group.ai_trustee_id, requested_at=group.ai_requested_at, wait=wait, **ai_return_kwargs(group),
    )
    group.sent_back_amount = ai_decisions.value_used(decision, 'return')
    group.return_fallback = decision.fallback
    group.return_timed_out = ai_decisions.timed_out(decision)


def set_payoffs(group: Group):
    """Pay trustor and trustee with the shared Berg–Dickhaut–McCabe arithmetic."""
    config = config_of(group)
    if group.field_maybe_none('sent_back_amount') is None:
        group.sent_back_amount = 0  # nothing was received, so nothing could be returned
    outcome = trust_outcome(config.endowment, group.sent_amount, config.multiplier, group.sent_back_amount)
    trustor_of(group).payoff = outcome.sender_payoff
    group.trustee_payoff = outcome.receiver_payoff
    if group.partner_kind == 'human':
        group.get_player_by_role(C.TRUSTEE_ROLE).payoff = outcome.receiver_payoff
    group.settled = True


def try_settle(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Settle the round once the return is in; never blocks a person (see ai_partners.background).

    Returns True when payoffs are set. wait: block until the AI deadline (bots only, at ResultsWaitPage,
    where a human trustee's return is in); force: settle now (the gate's page timed out), an unfinished AI
    call becoming a flagged fallback and a human return not made yet a timeout (0 returned).
    """
    if group.settled:
        return True
    if not (wait or force or return_ready(group)):
        return False
    if group.partner_kind == 'ai':
        collect_ai_return(group, wait)
    elif not human_return_in(group):
        time_out_return(group)
    set_payoffs(group)
    return True


def time_out_return(group: Group):
    """The human trustee's return was not made in time: 0, flagged."""
    group.return_timed_out = True
    group.sent_back_amount = 0


def round_arrived(group: Group):
    try_settle(group, wait=ai_decisions.has_bots(group))


def describe_partner(label: str, ai_description: str) -> str:
    """What the trustor is told its partner is, from the label the treatment shows."""
    if label == 'AI':
        return f'an AI agent ({ai_description})'
    if label == 'Human':
        return 'another participant in this study'
    return f'either another participant or an AI agent ({ai_description}); you will not be told which'


def common_vars(player: Player) -> dict:
    config = config_of(player)
    group = player.group
    return dict(
        game_vars(player),
        rematch=config.rematch,
        is_trustor=player.role == C.TRUSTOR_ROLE,
        partner_label=group.label_shown,
        partner_description=describe_partner(group.label_shown, ai_settings_of(player).ai_description),
    )


def amount_error(field: str, validate, values: dict, most: int):
    """The form error for an amount the game's rules refuse (game_logic.payoffs), else None."""
    try:
        validate(values.get(field), most)
    except InvalidAmount:
        return {field: f'Please enter a whole number of points from 0 to {most}.'}


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


def exit_vars(player: Player) -> dict:
    """What the exit app's debrief and payment pages show (debrief.html, payment_details.html)."""
    group = player.group
    # What the partner is, described as a truthful label would describe it.
    partner_was = describe_partner(badge_for(group.partner_kind, 'disclosed'), ai_settings_of(player).ai_description)
    played = player.in_rounds(1, config_of(player).num_rounds)
    return dict(is_trustor=player.role == C.TRUSTOR_ROLE, identity=group.identity, partner_was=partner_was,
                label_shown=group.label_shown, reveal=group.identity in session_config.UNDISCLOSED_IDENTITIES,
                rounds=[{k: (int(v) if k == 'payoff' else v) for k, v in round_summary(p).items()} for p in played])


def rules_before_grouping(player) -> dict:
    """The rules as the intro app shows them, before pairs form."""
    return dict(rematch=config_of(player).rematch, sender_word='trustor', receiver_word='trustee',
                base_pay_word=False, before_grouping=True)


def leave_if_out(player: Player, upcoming_apps):
    """app_after_this_page of the pairing page: an odd one out goes to the exit app at once."""
    if journey.is_out(player.participant):
        return journey.EXIT_APP


def leave_after_last_round(player: Player, upcoming_apps):
    """app_after_this_page of Results: after the last played round, to the exit app."""
    if is_last_round(player):
        pp = player.participant
        pp.journey_role = 'selector' if player.role == C.TRUSTOR_ROLE else 'candidate'
        pp.journey_identity = player.group.identity
        journey.finish_game(pp, exit_vars(player))
        return journey.EXIT_APP


# PAGES
class PairingWaitPage(WaitPage):
    """Once everybody has qualified in the intro app or left, pairs form among the qualified."""

    wait_for_all_groups = True
    after_all_players_arrive = form_pairs
    app_after_this_page = staticmethod(leave_if_out)  # an odd one out
    title_text = 'Waiting for other participants'
    body_text = 'The study starts as soon as everybody has read the instructions.'

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1


class Instructions(InfoPage):

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1

    @staticmethod
    def vars_for_template(player: Player):
        return common_vars(player)


class Send(CleanInputPage, DecisionPage):
    form_model = 'group'
    form_fields = ['sent_amount']

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and player.role == C.TRUSTOR_ROLE

    @staticmethod
    def vars_for_template(player: Player):
        return common_vars(player)

    @staticmethod
    def error_message(player: Player, values):
        return amount_error('sent_amount', validate_sent, values, config_of(player).endowment)

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        group = player.group
        if timeout_happened:
            # Whatever the auto-submitted form held is not a decision: 0 sent, and flagged.
            group.send_timed_out = True
            group.sent_amount = 0
        ask_for_return(group)


class SendWaitPage(WaitPage):
    """The trustee waits for the trustor's Send. The trustor never waits here: with a human trustee still
    reading the last round's results, it would wait where with an AI it never does."""

    title_text = 'Please wait'
    body_text = 'Waiting for your partner to decide.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and player.role == C.TRUSTEE_ROLE


class Return(CleanInputPage, DecisionPage):
    form_model = 'group'
    form_fields = ['sent_back_amount']

    @staticmethod
    def is_displayed(player: Player):
        group = player.group
        return (is_played_round(player) and player.role == C.TRUSTEE_ROLE and amount_received(group) > 0
                and not group.settled)

    @staticmethod
    def vars_for_template(player: Player):
        return dict(common_vars(player), sent=player.group.sent_amount, received=amount_received(player.group))

    @staticmethod
    def error_message(player: Player, values):
        return amount_error('sent_back_amount', validate_return, values, amount_received(player.group))

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        group = player.group
        if timeout_happened or group.settled:
            # A late answer after the trustor's gate timed out is not used: the round was paid with 0.
            time_out_return(group)


class ResultsWaitPage(WaitPage):
    """Bots only (they cannot run the gate's script): settles the round once both have decided."""

    after_all_players_arrive = round_arrived
    title_text = 'Please wait'
    body_text = 'Waiting for your partner to decide how many points to return.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and ai_decisions.has_bots(player)


class ReturnGate(ai_decisions.AIGate):
    """Both roles, every played round: the one page where the trustor waits for the return, AI or human.

    It opens when the return is in and ai_min_return_seconds have passed since the Send (return_ready),
    so the pages, their titles and the least wait are the same whoever the trustee is. The human trustee
    passes it too after deciding: its request opens the trustor's gate at once (advance goes to both)."""

    wait_text = 'Waiting for the results of this round…'
    not_ready_text = 'Still waiting for the results. Please wait a moment.'
    advance = staticmethod(try_settle)
    holds_min_delay = True

    @staticmethod
    def requested_at(group: Group) -> float:
        return group.ai_requested_at

    @staticmethod
    def awaits_people(group: Group) -> bool:
        return group.partner_kind == 'human' and not human_return_in(group)

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and not ai_decisions.has_bots(player)


class Results(InfoPage):
    app_after_this_page = staticmethod(leave_after_last_round)

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)

    @staticmethod
    def vars_for_template(player: Player):
        return dict(common_vars(player), **round_summary(player))


page_sequence = [
    PairingWaitPage,
    Instructions,
    Send,
    SendWaitPage,
    Return,
    ResultsWaitPage,
    ReturnGate,
    Results,
]


# EXPORTS: trust_game/exports.py (one row per trustor × played round; one per AI decision)
from .exports import custom_export, custom_export_ai_calls, custom_export_config  # noqa: E402  (they read the models above)
