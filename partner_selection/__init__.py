import json
import random
import time

from otree.api import *

from ai_partners import GameView, broker, make_partner, read_settings
from game_logic import society
from game_logic.export_schema import AI_CALL_COLUMNS, CANDIDATE_COLUMNS, DECISION_COLUMNS, json_text
from game_logic.payoffs import comprehension_example_return, trust_outcome
from game_logic.rounds import cfg, info_timeout, is_last_round, is_played_round, max_rounds, page_timeout

doc = """
Communication-based partner selection in hybrid mini-societies of humans and AI candidates.
Each round, candidates (human participants and server-side AI partners) write a message; each
selector picks one candidate and plays a Berg–Dickhaut–McCabe (1995) trust game with it.
Identity of AI candidates is disclosed, hidden, or falsely labelled (session config `identity`).
Anchor study: Jiang, Brinkmann, Nussberger, Soraperra, Bonnefon & Rahwan (2025), "Humans learn to
prefer trustworthy AI over human partners", arXiv 2507.13524.
"""


class C(BaseConstants):
    NAME_IN_URL = 'partner_selection'
    # Roles and group sizes come from the session config, so oTree's own grouping is not used.
    PLAYERS_PER_GROUP = None
    # Upper bound; the session config's num_rounds decides how many are played.
    NUM_ROUNDS = max_rounds()  # OTREE_MAX_ROUNDS, default 20: see game_logic/rounds.py
    # Upper bounds for per-card / per-selector form fields (belief_1.., return_1..).
    MAX_CANDIDATES = 12
    MAX_SELECTORS = 12
    SELECTOR_ROLE = 'selector'
    CANDIDATE_ROLE = 'candidate'


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    treatment = models.StringField(doc='hidden | disclosed | false_label')
    incomplete = models.BooleanField(
        initial=False, doc='formed with fewer humans than configured (arrival fallback or lab remainder)'
    )
    display_labels = models.LongStringField(initial='{}', doc='JSON: candidate id -> card letter this round')
    ai_messages_requested_at = models.FloatField(initial=0, doc='epoch seconds the AI messages were requested')
    ai_messages_collected = models.BooleanField(initial=False)
    ai_returns_requested_at = models.FloatField(initial=0)
    round_settled = models.BooleanField(initial=False, doc='all returns in and payoffs set')


def _belief_field():
    return models.StringField(
        choices=[['ai', 'AI'], ['human', 'Human']], blank=True, widget=widgets.RadioSelectHorizontal
    )


def _return_field():
    return models.IntegerField(min=0, blank=True, label='Points to return')


class Player(BasePlayer):
    ps_role = models.StringField(doc='selector | candidate, kept for the whole session')
    candidate_id = models.StringField(initial='', doc='H1, H2, … for human candidates')
    treatment = models.StringField(initial='')
    # --- round 1: consent and comprehension ---
    consent = models.BooleanField(
        label='I have read the information above and agree to take part.', widget=widgets.CheckboxInput
    )
    consent_timed_out = models.BooleanField(initial=False)
    # Filled by the consent page from the online room's URL (Prolific STUDY_ID / SESSION_ID), else ''.
    prolific_study_id = models.StringField(blank=True, initial='')
    prolific_session_id = models.StringField(blank=True, initial='')
    comp_received = models.IntegerField(label='')
    comp_payoff = models.IntegerField(label='')
    comprehension_attempts = models.IntegerField(initial=0)
    comprehension_failed = models.BooleanField(initial=False)
    # --- candidates ---
    message = models.LongStringField(blank=True, label='Your message to the selectors')
    message_timed_out = models.BooleanField(initial=False)
    return_slots = models.StringField(initial='', doc='selector codes behind return_1, return_2, … this round')
    return_1 = _return_field()
    return_2 = _return_field()
    return_3 = _return_field()
    return_4 = _return_field()
    return_5 = _return_field()
    return_6 = _return_field()
    return_7 = _return_field()
    return_8 = _return_field()
    return_9 = _return_field()
    return_10 = _return_field()
    return_11 = _return_field()
    return_12 = _return_field()
    candidate_return_timed_out = models.BooleanField(initial=False)
    # --- selectors ---
    offered_candidate_ids = models.StringField(initial='')
    offered_display_labels = models.StringField(initial='')
    choice = models.StringField(blank=True, doc='card letter the selector picked')
    amount = models.IntegerField(min=0, label='Points to send')
    belief_1 = _belief_field()
    belief_2 = _belief_field()
    belief_3 = _belief_field()
    belief_4 = _belief_field()
    belief_5 = _belief_field()
    belief_6 = _belief_field()
    belief_7 = _belief_field()
    belief_8 = _belief_field()
    belief_9 = _belief_field()
    belief_10 = _belief_field()
    belief_11 = _belief_field()
    belief_12 = _belief_field()
    choice_loaded_at = models.FloatField(initial=0)
    seconds_on_choice_page = models.FloatField(initial=0)
    choice_timed_out = models.BooleanField(initial=False)
    chosen_candidate_id = models.StringField(initial='')
    amount_sent = models.IntegerField(initial=0)
    amount_returned = models.IntegerField(initial=0)
    return_timed_out = models.BooleanField(initial=False)
    return_fallback = models.BooleanField(initial=False)
    belief_guesses = models.StringField(initial='')
    belief_n_correct = models.IntegerField(initial=0)
    belief_bonus = models.IntegerField(initial=0)
    feedback_timed_out = models.BooleanField(initial=False)


class Candidate(ExtraModel):
    """One candidate (human or AI) in one round: the same fields for both kinds, so code loops over all."""

    group = models.Link(Group)
    candidate_id = models.StringField()
    candidate_key = models.StringField(doc='session-group-candidate, stable across rounds')
    kind = models.StringField()
    participant_code = models.StringField()
    policy = models.StringField()
    round_number = models.IntegerField()
    active = models.BooleanField()
    dropped = models.BooleanField()
    message = models.LongStringField()
    message_timed_out = models.BooleanField()
    message_fallback = models.BooleanField()
    times_chosen = models.IntegerField()
    amount_received = models.IntegerField()
    amount_returned = models.IntegerField()
    returns = models.StringField()
    payoff = models.IntegerField()
    return_timed_out = models.BooleanField()
    return_fallback = models.BooleanField()


class AICall(ExtraModel):
    """Every AI decision as made: who decided, what it was asked, what it answered, what was used."""

    group = models.Link(Group)
    round_number = models.IntegerField()
    candidate_id = models.StringField()
    decision = models.StringField()
    policy = models.StringField()
    model = models.StringField()
    endpoint_host = models.StringField()
    prompt = models.LongStringField()
    raw_reply = models.LongStringField()
    parsed_value = models.LongStringField()
    latency_ms = models.FloatField()
    prompt_tokens = models.IntegerField()
    completion_tokens = models.IntegerField()
    fallback = models.BooleanField()
    fallback_reason = models.StringField()


# FUNCTIONS
def is_excluded(player: Player) -> bool:
    return bool(player.participant.excluded)


def is_selector(player: Player) -> bool:
    return player.participant.ps_role == C.SELECTOR_ROLE and not is_excluded(player)


def is_active_candidate(player: Player) -> bool:
    pp = player.participant
    return pp.ps_role == C.CANDIDATE_ROLE and not pp.excluded and not pp.dropped


def creating_session(subsession: Subsession):
    config = subsession.session.config
    society.parse_treatments(config['treatments'], config['identity'])  # fail early on a typo
    read_settings(config)  # a bad AI setting fails here, not when the first group starts a round
    if config['num_rounds'] > C.NUM_ROUNDS:
        raise society.ConfigError(f"num_rounds is at most {C.NUM_ROUNDS}, got {config['num_rounds']}")
    for player in subsession.get_players():
        if subsession.round_number == 1:
            pp = player.participant
            pp.excluded = False
            pp.dropped = False
            pp.timeout_streak = 0
            pp.ps_role = ''
            pp.treatment = ''
    if config['grouping'] == 'arrival':
        return  # groups form on the arrival wait page
    if subsession.round_number == 1:
        size = config['num_selectors'] + config['num_human_candidates']
        ids = [p.id_in_subsession for p in subsession.get_players()]
        subsession.set_group_matrix(society.split_into_groups(ids, size))
        for index, group in enumerate(subsession.get_groups(), start=1):
            set_up_group(group, index)
    else:
        subsession.group_like_round(1)
        for group in subsession.get_groups():
            group.treatment = group.in_round(1).treatment
            group.incomplete = group.in_round(1).incomplete
            for player in group.get_players():
                copy_role(player)


def set_up_group(group: Group, index: int):
    """Roles (selectors first) and the group's treatment, kept for the whole session."""
    config = cfg(group)
    treatments = society.parse_treatments(config['treatments'], config['identity'])
    group.treatment = society.treatment_for_group(index, treatments)
    players = group.get_players()
    group.incomplete = len(players) < config['num_selectors'] + config['num_human_candidates']
    human_ids = iter(society.candidate_ids(len(players), 0)['human'])
    for player, role in zip(players, society.assign_roles(len(players), config['num_selectors'])):
        pp = player.participant
        pp.ps_role = role
        pp.treatment = group.treatment
        pp.candidate_id = next(human_ids) if role == C.CANDIDATE_ROLE else ''
        copy_role(player)


def copy_role(player: Player):
    pp = player.participant
    player.ps_role = pp.ps_role
    player.treatment = pp.treatment
    player.candidate_id = pp.candidate_id


def group_by_arrival_time_method(subsession: Subsession, waiting_players):
    """A full group as soon as enough people wait; after arrival_max_wait_seconds, whoever is there."""
    config = subsession.session.config
    size = config['num_selectors'] + config['num_human_candidates']
    if len(waiting_players) >= size:
        return waiting_players[:size]
    limit = config['arrival_max_wait_seconds']
    now = time.time()
    if limit and any(now - p.participant.arrived_at >= limit for p in waiting_players):
        return waiting_players


def set_up_arrived_group(group: Group):
    session = group.session
    session.ps_groups_formed = session.vars.get('ps_groups_formed', 0) + 1
    set_up_group(group, session.ps_groups_formed)
    for later in group.in_rounds(2, cfg(group)['num_rounds']) if cfg(group)['num_rounds'] > 1 else []:
        later.treatment = group.treatment
        later.incomplete = group.incomplete
        for player in later.get_players():
            copy_role(player)


def candidate_key(group: Group, candidate_id: str) -> str:
    return f'{group.session.code}-g{group.id_in_subsession}-{candidate_id}'


def ai_partner(group: Group, candidate_id: str):
    return make_partner(dict(cfg(group)), candidate_key(group, candidate_id))


def ai_policy_label(config: dict) -> str:
    if config['ai_policy'] == 'llm':
        return f"llm:{config['llm_model']}"
    return f"scripted:{config['ai_preset']}"


def round_candidates(group: Group) -> list:
    return sorted(Candidate.filter(group=group), key=lambda c: c.candidate_id)


def ai_view(group: Group, candidate: Candidate) -> GameView:
    """What the AI candidate knows: the rules, the round, and only its own past interactions."""
    config = cfg(group)
    past = [
        c
        for r in range(1, group.round_number)
        for c in Candidate.filter(group=group.in_round(r), candidate_id=candidate.candidate_id)
    ]
    history = [
        dict(round=c.round_number, times_chosen=c.times_chosen, received=c.amount_received, returned=c.amount_returned)
        for c in sorted(past, key=lambda c: c.round_number)
    ]
    return GameView(
        role='candidate',
        round_number=group.round_number,
        num_rounds=config['num_rounds'],
        endowment=config['endowment'],
        multiplier=config['multiplier'],
        max_message_length=config['max_message_length'],
        identity=group.treatment,
        shown_as=society.badge_for('ai', group.treatment),
        history=history,
    )


def broker_key(group: Group, candidate_id: str, decision: str, counterpart: str = '') -> str:
    return f'{candidate_key(group, candidate_id)}-r{group.round_number}-{decision}-{counterpart}'


def record_ai_call(group: Group, candidate_id: str, decision) -> None:
    row = decision.as_row()
    AICall.create(
        group=group,
        round_number=group.round_number,
        candidate_id=candidate_id,
        decision=row['decision'],
        policy=row['policy'],
        model=row['model'] or '',
        endpoint_host=row['endpoint_host'] or '',
        prompt=row['prompt'] or '',
        raw_reply=row['raw_reply'] or '',
        parsed_value=str(row['value']),
        latency_ms=float(row['latency_ms'] or 0),
        prompt_tokens=row['prompt_tokens'],
        completion_tokens=row['completion_tokens'],
        fallback=bool(row['fallback']),
        fallback_reason=row['fallback_reason'] or '',
    )


def start_round(group: Group):
    """Round start: the candidate pool (dropouts leave it), card labels, and the AI messages in the background."""
    config = cfg(group)
    labels_rng = random.Random(
        f'{group.session.code}-g{group.id_in_subsession}-labels'
        + ('' if config['persistent_candidate_labels'] else f'-r{group.round_number}')
    )
    ids = society.candidate_ids(0, config['num_ai_candidates'])['ai']
    for player in group.get_players():
        pp = player.participant
        if pp.ps_role != C.CANDIDATE_ROLE:
            continue
        if not pp.dropped and society.is_dropped(pp.timeout_streak, config['dropout_after_timeouts']):
            pp.dropped = True
        Candidate.create(
            group=group,
            candidate_id=pp.candidate_id,
            candidate_key=candidate_key(group, pp.candidate_id),
            kind='human',
            participant_code=pp.code,
            policy='human',
            round_number=group.round_number,
            active=not pp.excluded and not pp.dropped,
            dropped=bool(pp.dropped),
            **_empty_round_outcome(),
        )
    for cid in ids:
        partner = ai_partner(group, cid)
        candidate = Candidate.create(
            group=group,
            candidate_id=cid,
            candidate_key=candidate_key(group, cid),
            kind='ai',
            participant_code='',
            policy=ai_policy_label(config),
            round_number=group.round_number,
            active=True,
            dropped=False,
            **_empty_round_outcome(),
        )
        broker.start(broker_key(group, cid, 'message'), partner, 'message', ai_view(group, candidate))
    group.ai_messages_requested_at = time.time()
    all_ids = sorted(c.candidate_id for c in Candidate.filter(group=group))
    group.display_labels = json.dumps(society.draw_display_labels(all_ids, labels_rng))


def _empty_round_outcome() -> dict:
    return dict(
        message='',
        message_timed_out=False,
        message_fallback=False,
        times_chosen=0,
        amount_received=0,
        amount_returned=0,
        returns='',
        payoff=0,
        return_timed_out=False,
        return_fallback=False,
    )


def has_bots(group: Group) -> bool:
    # oTree's command-line bots cannot run the waiting page's JavaScript; for them collection blocks.
    return any(p.participant._is_bot for p in group.get_players())


def ai_decisions_ready(group: Group, keys: list, requested_at: float) -> bool:
    """Every background AI decision finished, was lost in a restart, or its deadline passed."""
    return broker.collectable(keys, requested_at, cfg(group)['ai_collect_deadline_seconds'])


def seconds_left(group: Group, requested_at: float, wait: bool) -> float:
    """How long a collect may block: the rest of the deadline for bots, nothing for people."""
    return broker.seconds_left(requested_at, cfg(group)['ai_collect_deadline_seconds']) if wait else 0


def collect_messages(group: Group):
    """Human messages are in; card orders are drawn; AI messages are collected if they are ready."""
    players_by_code = {p.participant.code: p for p in group.get_players()}
    for candidate in round_candidates(group):
        if candidate.kind == 'human':
            author = players_by_code[candidate.participant_code]
            candidate.message = author.field_maybe_none('message') or ''
            candidate.message_timed_out = author.message_timed_out
    try_collect_ai_messages(group, wait=has_bots(group))
    labels = json.loads(group.display_labels)
    active_ids = [c.candidate_id for c in round_candidates(group) if c.active]
    for player in group.get_players():
        if not is_selector(player):
            continue
        rng = random.Random(f'{group.session.code}-{player.participant.code}-r{group.round_number}-order')
        order = society.card_order(active_ids, rng)
        player.offered_candidate_ids = ';'.join(order)
        player.offered_display_labels = ';'.join(labels[cid] for cid in order)


def try_collect_ai_messages(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Store the AI candidates' messages once all are ready (or the deadline passed); never blocks people.

    Returns True when the messages are in. `wait` blocks until the deadline (bots only); `force`
    collects now, unfinished calls becoming flagged fallbacks. Messages of AI and human candidates
    are revealed together, so timing cannot tell them apart.
    """
    if group.ai_messages_collected:
        return True
    ai_candidates = [c for c in round_candidates(group) if c.kind == 'ai']
    keys = [broker_key(group, c.candidate_id, 'message') for c in ai_candidates]
    if not (wait or force or ai_decisions_ready(group, keys, group.ai_messages_requested_at)):
        return False
    for candidate, key in zip(ai_candidates, keys):
        decision = broker.collect(
            key,
            ai_partner(group, candidate.candidate_id),
            'message',
            ai_view(group, candidate),
            deadline_seconds=seconds_left(group, group.ai_messages_requested_at, wait),
        )
        record_ai_call(group, candidate.candidate_id, decision)
        candidate.message = decision.value
        candidate.message_fallback = decision.fallback
        candidate.message_timed_out = decision.fallback_reason in ('deadline', 'timeout')
    group.ai_messages_collected = True
    return True


def offered_cards(player: Player) -> list:
    """The selector's cards in display order: id, kind, letter, badge, message (raw and escaped)."""
    by_id = {c.candidate_id: c for c in round_candidates(player.group)}
    ids = [cid for cid in player.offered_candidate_ids.split(';') if cid]
    cards = []
    for position, (cid, label) in enumerate(zip(ids, player.offered_display_labels.split(';')), start=1):
        candidate = by_id[cid]
        cards.append(
            dict(
                position=position,
                candidate_id=cid,
                kind=candidate.kind,
                label=label,
                badge=society.badge_for(candidate.kind, player.treatment),
                message=candidate.message,
                message_html=society.escape_text(candidate.message),
                belief_field=f'belief_{position}',
            )
        )
    return cards


def choice_choices(player: Player):
    """Only the card letters this selector was shown are valid choices."""
    return [label for label in player.offered_display_labels.split(';') if label]


def amount_max(player: Player):
    return cfg(player)['endowment']


def elicits_beliefs(player: Player) -> bool:
    return bool(cfg(player)['elicit_beliefs']) and player.treatment in ('hidden', 'false_label')


def process_choices(group: Group):
    """Who chose whom: return slots for human candidates; AI returns start in the background now."""
    config = cfg(group)
    candidates = {c.candidate_id: c for c in round_candidates(group)}
    slots = {cid: [] for cid in candidates}
    for player in group.get_players():
        if is_selector(player) and player.chosen_candidate_id:
            slots[player.chosen_candidate_id].append(player)
    for cid, choosers in slots.items():
        candidate = candidates[cid]
        candidate.times_chosen = len(choosers)
        candidate.amount_received = sum(p.amount_sent * config['multiplier'] for p in choosers)
        if candidate.kind == 'ai':
            partner = ai_partner(group, cid)
            for selector in choosers:
                broker.start(
                    broker_key(group, cid, 'return', selector.participant.code),
                    partner,
                    'return',
                    ai_view(group, candidate),
                    **_return_kwargs(config, selector),
                )
    group.ai_returns_requested_at = time.time()
    for player in group.get_players():
        if player.participant.ps_role == C.CANDIDATE_ROLE:
            choosers = slots.get(player.candidate_id, [])
            player.return_slots = ';'.join(p.participant.code for p in choosers)


def _return_kwargs(config: dict, selector: Player) -> dict:
    return dict(
        amount_sent=selector.amount_sent,
        amount_received=selector.amount_sent * config['multiplier'],
        counterpart=selector.participant.code,
    )


def return_slots(player: Player) -> list:
    """(form field, selector) pairs for a human candidate's return decisions this round."""
    codes = [c for c in player.return_slots.split(';') if c]
    by_code = {p.participant.code: p for p in player.group.get_players()}
    return [(f'return_{i}', by_code[code]) for i, code in enumerate(codes, start=1)]


def ai_return_keys(group: Group) -> list:
    return [
        broker_key(group, p.chosen_candidate_id, 'return', p.participant.code)
        for p in group.get_players()
        if is_selector(p) and p.chosen_candidate_id and society.kind_of(p.chosen_candidate_id) == 'ai'
    ]


def return_delay_over(group: Group) -> bool:
    """ai_min_return_seconds have passed since the choices were in.

    The same in every treatment and whoever was chosen: otherwise a round in which no selector chose a
    human candidate (nobody has a Return page) would show its feedback at once, and in the hidden
    treatment the speed alone would tell a selector that the partner was an AI.
    """
    return time.time() >= group.ai_returns_requested_at + cfg(group).get('ai_min_return_seconds', 0)


def try_settle_round(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Settle the round once every AI return is ready (or the deadline passed) and the minimum delay is
    over; never blocks people.

    `wait` and `force` as in try_collect_ai_messages (bots, which cannot poll, skip the delay).
    """
    if group.round_settled:
        return True
    if not (wait or force or (return_delay_over(group) and ai_decisions_ready(
            group, ai_return_keys(group), group.ai_returns_requested_at))):
        return False
    settle_round(group, wait)
    group.round_settled = True
    return True


def returns_arrived(group: Group):
    try_settle_round(group, wait=has_bots(group))


def settle_round(group: Group, wait: bool):
    """Collect every return, then pay selectors and candidates with the shared trust-game arithmetic."""
    config = cfg(group)
    candidates = {c.candidate_id: c for c in round_candidates(group)}
    returns = {}  # selector code -> (returned, timed_out, fallback)
    for player in group.get_players():
        if player.participant.ps_role == C.CANDIDATE_ROLE:
            for field, selector in return_slots(player):
                value = player.field_maybe_none(field)
                returns[selector.participant.code] = (value or 0, player.candidate_return_timed_out, False)
    for player in group.get_players():
        if not (is_selector(player) and player.chosen_candidate_id):
            continue
        candidate = candidates[player.chosen_candidate_id]
        if candidate.kind == 'ai':
            key = broker_key(group, candidate.candidate_id, 'return', player.participant.code)
            decision = broker.collect(
                key,
                ai_partner(group, candidate.candidate_id),
                'return',
                ai_view(group, candidate),
                deadline_seconds=seconds_left(group, group.ai_returns_requested_at, wait),
                **_return_kwargs(config, player),
            )
            record_ai_call(group, candidate.candidate_id, decision)
            returns[player.participant.code] = (
                decision.value,
                decision.fallback_reason in ('deadline', 'timeout'),
                decision.fallback,
            )
    for player in group.get_players():
        if is_selector(player):
            pay_selector(player, candidates, returns)
    for candidate in candidates.values():
        choosers = [
            p for p in group.get_players() if is_selector(p) and p.chosen_candidate_id == candidate.candidate_id
        ]
        candidate.amount_returned = sum(p.amount_returned for p in choosers)
        candidate.returns = ';'.join(str(p.amount_returned) for p in choosers)
        candidate.return_timed_out = any(p.return_timed_out for p in choosers)
        candidate.return_fallback = any(p.return_fallback for p in choosers)
        base = config['candidate_base_pay'] if candidate.active else 0
        candidate.payoff = base + candidate.amount_received - candidate.amount_returned
    for player in group.get_players():
        if player.participant.ps_role == C.CANDIDATE_ROLE and not player.participant.excluded:
            player.payoff = candidates[player.candidate_id].payoff


def pay_selector(player: Player, candidates: dict, returns: dict):
    config = cfg(player)
    returned, timed_out, fallback = returns.get(player.participant.code, (0, False, False))
    outcome = trust_outcome(config['endowment'], player.amount_sent, config['multiplier'], returned)
    player.amount_returned = outcome.returned
    player.return_timed_out = timed_out
    player.return_fallback = fallback
    player.payoff = outcome.sender_payoff + player.belief_bonus


def selector_history(player: Player) -> list:
    """The selector's own past partners, for the optional history table."""
    rows = []
    for past in player.in_previous_rounds():
        if not past.chosen_candidate_id:
            rows.append(dict(round=past.round_number, label='—', badge='', sent=0, returned=0, timed_out=True))
            continue
        labels = dict(zip(past.offered_candidate_ids.split(';'), past.offered_display_labels.split(';')))
        kind = society.kind_of(past.chosen_candidate_id)
        rows.append(
            dict(
                round=past.round_number,
                label=labels[past.chosen_candidate_id],
                badge=society.badge_for(kind, past.treatment),
                sent=past.amount_sent,
                returned=past.amount_returned,
                timed_out=False,
            )
        )
    return rows


def common_vars(player: Player) -> dict:
    config = cfg(player)
    return dict(
        endowment=config['endowment'],
        multiplier=config['multiplier'],
        max_received=config['endowment'] * config['multiplier'],
        num_rounds=config['num_rounds'],
        num_selectors=config['num_selectors'],
        num_candidates=config['num_human_candidates'] + config['num_ai_candidates'],
        num_ai=config['num_ai_candidates'],
        is_selector=player.participant.ps_role == C.SELECTOR_ROLE,
        treatment=player.treatment,
        identity_shown=player.treatment != 'hidden',
        selector_chooses_amount=config['selector_chooses_amount'],
        candidate_base_pay=config['candidate_base_pay'],
        elicit_beliefs=elicits_beliefs(player),
        belief_bonus_points=config['belief_bonus'],
        max_message_length=config['max_message_length'],
        ai_description=read_settings(config).ai_description,
        persistent_candidate_labels=bool(config['persistent_candidate_labels']),
    )


# PAGES
class ArrivalWaitPage(WaitPage):
    group_by_arrival_time = True
    after_all_players_arrive = set_up_arrived_group
    title_text = 'Waiting for other participants'
    body_text = 'The study starts as soon as enough participants have arrived.'

    @staticmethod
    def is_displayed(player: Player):
        if player.round_number != 1 or cfg(player)['grouping'] != 'arrival':
            return False
        pp = player.participant
        if not pp.vars.get('arrived_at'):
            pp.arrived_at = time.time()
        return True


class Consent(Page):
    form_model = 'player'
    form_fields = ['consent', 'prolific_study_id', 'prolific_session_id']
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        for field in ('prolific_study_id', 'prolific_session_id'):
            value = society.clean_external_id(player.field_maybe_none(field) or '')
            setattr(player, field, value)
            setattr(pp, field, value)
        # No consent, no participation: an idle consent page is not consent.
        if timeout_happened:
            player.consent_timed_out = True
            player.consent = False
            player.participant.excluded = True


class Instructions(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and not is_excluded(player)

    vars_for_template = common_vars


class Comprehension(Page):
    form_model = 'player'
    form_fields = ['comp_received', 'comp_payoff']
    get_timeout_seconds = page_timeout

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and not is_excluded(player)

    @staticmethod
    def vars_for_template(player: Player):
        endowment = cfg(player)['endowment']
        returned = comprehension_example_return(endowment, cfg(player)['multiplier'])
        if player.participant.ps_role == C.SELECTOR_ROLE:
            question_payoff = (
                f'2. You are a selector, send all {endowment} points, and the candidate returns {returned}. '
                'How many points do you have this round?'
            )
        else:
            question_payoff = (
                f'2. You are a candidate; one selector sends you all {endowment} points and you return '
                f'{returned}. How many of the points you received do you keep?'
            )
        return dict(
            common_vars(player),
            attempts_left=cfg(player)['comprehension_max_attempts'] - player.comprehension_attempts,
            question_received=f'1. A selector sends all {endowment} points to a candidate. '
            'How many points does the candidate receive?',
            question_payoff=question_payoff,
        )

    @staticmethod
    def error_message(player: Player, values):
        config = cfg(player)
        endowment, multiplier = config['endowment'], config['multiplier']
        wrong = []
        if values['comp_received'] != endowment * multiplier:
            wrong.append('how many points a candidate receives')
        expected_payoff = comprehension_payoff(player)
        if values['comp_payoff'] != expected_payoff:
            wrong.append('the payoff in the example')
        if not wrong:
            return
        player.comprehension_attempts += 1
        if player.comprehension_attempts >= config['comprehension_max_attempts']:
            player.comprehension_failed = True
            return  # let them through to the exit page instead of looping forever
        left = config['comprehension_max_attempts'] - player.comprehension_attempts
        return f"Not quite: check {' and '.join(wrong)}. Attempts left: {left}."

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        if timeout_happened or player.comprehension_failed:
            player.comprehension_failed = True
            player.participant.excluded = True


def comprehension_payoff(player: Player) -> int:
    """The worked example: a selector sends everything and gets the example return back / a candidate
    returns it (the question asks what the candidate keeps of what it received: no base pay)."""
    config = cfg(player)
    outcome = trust_outcome(config['endowment'], config['endowment'], config['multiplier'],
                            comprehension_example_return(config['endowment'], config['multiplier']))
    if player.participant.ps_role == C.SELECTOR_ROLE:
        return outcome.sender_payoff
    return outcome.receiver_payoff


class ComprehensionFailed(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and player.comprehension_failed


class RoundStart(WaitPage):
    after_all_players_arrive = start_round
    title_text = 'Please wait'
    body_text = 'The next round is about to start.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)


class WriteMessage(Page):
    form_model = 'player'
    form_fields = ['message']
    get_timeout_seconds = page_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_active_candidate(player)

    vars_for_template = common_vars

    @staticmethod
    def error_message(player: Player, values):
        limit = cfg(player)['max_message_length']
        text = (values['message'] or '').strip()
        if not text:
            return 'Please write a message to the selectors.'
        if len(text) > limit:
            return f'Your message has {len(text)} characters; the limit is {limit}.'

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        pp.timeout_streak = society.update_timeout_streak(pp.timeout_streak, timeout_happened)
        if timeout_happened:
            player.message_timed_out = True
            player.message = ''
        else:
            player.message = player.message.strip()


class MessagesWaitPage(WaitPage):
    after_all_players_arrive = collect_messages
    title_text = 'Please wait'
    body_text = 'Waiting for all candidates to write their messages.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)


class AIMessagesGate(Page):
    """Shown only while AI messages are still on their way: looks like a wait page, polls, moves on."""

    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_selector(player) and not player.group.ai_messages_collected

    @staticmethod
    def live_method(player: Player, data):
        return {player.id_in_group: dict(ready=try_collect_ai_messages(player.group))}

    @staticmethod
    def error_message(player: Player, values):
        if not try_collect_ai_messages(player.group):
            return 'Still waiting for the other candidates. Please wait a moment.'

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        # An unattended page (browser closed) still must not hold the group: use what is there.
        try_collect_ai_messages(player.group, force=True)


class Choose(Page):
    form_model = 'player'
    get_timeout_seconds = page_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_selector(player)

    @staticmethod
    def get_form_fields(player: Player):
        fields = ['choice']
        if cfg(player)['selector_chooses_amount']:
            fields.append('amount')
        if elicits_beliefs(player):
            fields += [card['belief_field'] for card in offered_cards(player)]
        return fields

    @staticmethod
    def vars_for_template(player: Player):
        if not player.choice_loaded_at:
            player.choice_loaded_at = time.time()
        history = selector_history(player) if cfg(player)['show_history'] else []
        return dict(common_vars(player), cards=offered_cards(player), history=history)

    @staticmethod
    def error_message(player: Player, values):
        if not values.get('choice'):
            return 'Please choose one candidate.'
        if elicits_beliefs(player):
            missing = [card['label'] for card in offered_cards(player) if not values.get(card['belief_field'])]
            if missing:
                return 'Please say for every candidate whether you think it is an AI (missing: %s).' % ', '.join(
                    missing
                )

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        config = cfg(player)
        player.seconds_on_choice_page = round(time.time() - player.choice_loaded_at, 3)
        cards = offered_cards(player)
        if timeout_happened:
            # Whatever the auto-submitted form held is not a decision.
            player.choice_timed_out = True
            player.choice = ''
            player.chosen_candidate_id = ''
            player.amount_sent = 0
            return
        by_label = {card['label']: card for card in cards}
        player.chosen_candidate_id = by_label[player.choice]['candidate_id']
        player.amount_sent = player.amount if config['selector_chooses_amount'] else config['endowment']
        if elicits_beliefs(player):
            guesses = [player.field_maybe_none(card['belief_field']) or '' for card in cards]
            player.belief_guesses = ';'.join(guesses)
            player.belief_n_correct = society.score_beliefs(guesses, [card['kind'] for card in cards])
            player.belief_bonus = player.belief_n_correct * config['belief_bonus']


class ChoicesWaitPage(WaitPage):
    after_all_players_arrive = process_choices
    title_text = 'Please wait'
    body_text = 'Waiting for all selectors to choose.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)


class Return(Page):
    form_model = 'player'
    get_timeout_seconds = page_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_active_candidate(player) and bool(player.return_slots)

    @staticmethod
    def get_form_fields(player: Player):
        return [field for field, _ in return_slots(player)]

    @staticmethod
    def vars_for_template(player: Player):
        multiplier = cfg(player)['multiplier']
        decisions = [
            dict(field=field, number=i, sent=selector.amount_sent, received=selector.amount_sent * multiplier)
            for i, (field, selector) in enumerate(return_slots(player), start=1)
        ]
        return dict(common_vars(player), decisions=decisions)

    @staticmethod
    def error_message(player: Player, values):
        multiplier = cfg(player)['multiplier']
        errors = {}
        for field, selector in return_slots(player):
            received = selector.amount_sent * multiplier
            value = values.get(field)
            if value is None:
                errors[field] = 'Please enter how many points you return.'
            elif not 0 <= value <= received:
                errors[field] = f'Enter a whole number from 0 to {received}.'
        return errors or None

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        pp.timeout_streak = society.update_timeout_streak(pp.timeout_streak, timeout_happened)
        if timeout_happened:
            player.candidate_return_timed_out = True
            for field, _ in return_slots(player):
                setattr(player, field, 0)


class ReturnsWaitPage(WaitPage):
    after_all_players_arrive = returns_arrived
    title_text = 'Please wait'
    body_text = 'Waiting for the chosen candidates to decide how much to return.'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player)


class AIReturnsGate(Page):
    """Shown only while AI returns are still on their way (see AIMessagesGate)."""

    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        pp = player.participant
        return is_played_round(player) and not pp.excluded and not pp.dropped and not player.group.round_settled

    @staticmethod
    def live_method(player: Player, data):
        return {player.id_in_group: dict(ready=try_settle_round(player.group))}

    @staticmethod
    def error_message(player: Player, values):
        if not try_settle_round(player.group):
            return 'Still waiting for the other participants. Please wait a moment.'

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        try_settle_round(player.group, force=True)


class Feedback(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        pp = player.participant
        return is_played_round(player) and not pp.excluded and not pp.dropped

    @staticmethod
    def vars_for_template(player: Player):
        data = common_vars(player)
        if player.participant.ps_role == C.SELECTOR_ROLE:
            labels = dict(zip(player.offered_candidate_ids.split(';'), player.offered_display_labels.split(';')))
            data.update(
                chosen_label=labels.get(player.chosen_candidate_id, ''),
                history=selector_history(player) if cfg(player)['show_history'] else [],
            )
        else:
            candidate = next(c for c in round_candidates(player.group) if c.candidate_id == player.candidate_id)
            data.update(candidate=candidate)
        return data

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        player.feedback_timed_out = timeout_happened


class Debrief(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_last_round(player)

    @staticmethod
    def vars_for_template(player: Player):
        rounds = []
        if player.participant.ps_role == C.SELECTOR_ROLE and not is_excluded(player):
            for past in player.in_all_rounds()[: cfg(player)['num_rounds']]:
                if past.chosen_candidate_id:
                    kind = society.kind_of(past.chosen_candidate_id)
                    labels = dict(zip(past.offered_candidate_ids.split(';'), past.offered_display_labels.split(';')))
                    rounds.append(
                        dict(
                            round=past.round_number,
                            label=labels[past.chosen_candidate_id],
                            kind='an AI' if kind == 'ai' else 'a human participant',
                            shown=society.badge_for(kind, past.treatment),
                        )
                    )
        return dict(common_vars(player), rounds=rounds, reveal=player.treatment in ('hidden', 'false_label'))


class Payment(Page):
    get_timeout_seconds = info_timeout

    @staticmethod
    def is_displayed(player: Player):
        return is_last_round(player)

    @staticmethod
    def vars_for_template(player: Player):
        pp = player.participant
        return dict(
            excluded=bool(pp.excluded),
            points=pp.payoff,
            money_from_points=pp.payoff.to_real_world_currency(player.session),
            participation_fee=player.session.config['participation_fee'],
            total=pp.payoff_plus_participation_fee(),
            completion_url=society.escape_text(cfg(player)['prolific_completion_url']),
        )


page_sequence = [
    ArrivalWaitPage,
    Consent,
    Instructions,
    Comprehension,
    ComprehensionFailed,
    RoundStart,
    WriteMessage,
    MessagesWaitPage,
    AIMessagesGate,
    Choose,
    ChoicesWaitPage,
    Return,
    ReturnsWaitPage,
    AIReturnsGate,
    Feedback,
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




def decision_row(player: Player) -> list:
    config = cfg(player)
    cards = offered_cards(player)
    kinds = [card['kind'] for card in cards]
    chosen = next((card for card in cards if card['candidate_id'] == player.chosen_candidate_id), None)
    n_ai = kinds.count('ai')
    beliefs_elicited = elicits_beliefs(player)
    return [
        player.session.code,
        player.group.id_in_subsession,
        player.treatment,
        player.round_number,
        player.participant.code,
        player.participant.label or '',
        len(cards),
        n_ai,
        round(n_ai / len(cards), 6) if cards else '',
        ';'.join(card['candidate_id'] for card in cards),
        ';'.join(kinds),
        ';'.join(card['badge'] for card in cards),
        ';'.join(card['label'] for card in cards),
        json.dumps([card['message'] for card in cards], ensure_ascii=False),
        chosen['candidate_id'] if chosen else '',
        chosen['kind'] if chosen else '',
        chosen['badge'] if chosen else '',
        chosen['position'] if chosen else '',
        (1 if chosen['kind'] == 'ai' else 0) if chosen else '',
        # No choice (timed out): nothing was sent, and an empty cell says so (a 0 would read as a choice).
        player.amount_sent if chosen else '',
        config['multiplier'],
        player.amount_sent * config['multiplier'] if chosen else '',
        player.amount_returned if chosen else '',
        int(player.return_timed_out),
        int(player.return_fallback),
        int(player.payoff),
        player.belief_guesses if beliefs_elicited else '',
        player.belief_n_correct if beliefs_elicited else '',
        player.belief_bonus,
        player.seconds_on_choice_page,
        int(player.choice_timed_out),
    ]


def custom_export(players):
    """Decisions: one row per selector × played round (columns: README, data codebook)."""
    yield DECISION_COLUMNS
    for player in players:
        pp = player.participant
        if is_played_round(player) and pp.ps_role == C.SELECTOR_ROLE and not pp.excluded:
            yield decision_row(player)




def message_length(candidate) -> int | str:
    """Characters of the message shown; empty when a human candidate's message page timed out (no
    message written is not a message of length 0). A timed-out AI call shows its fallback message."""
    if candidate.message_timed_out and not candidate.message:
        return ''
    return len(candidate.message)


def custom_export_candidates(players):
    """Candidates: one row per candidate (human or AI) × played round."""
    yield CANDIDATE_COLUMNS
    for group in _played_groups(players):
        for c in round_candidates(group):
            yield [
                group.session.code, group.id_in_subsession, group.treatment, group.round_number, c.candidate_id,
                c.participant_code, c.kind, c.policy, json_text(c.message), message_length(c), int(c.active),
                c.times_chosen, c.amount_received, c.amount_returned, c.returns, c.payoff,
                int(c.message_timed_out), int(c.return_timed_out), int(c.message_fallback),
                int(c.return_fallback), int(c.dropped),
            ]




def custom_export_ai_calls(players):
    """AI calls: one row per AI decision, with prompt, raw reply, latency and fallback."""
    yield AI_CALL_COLUMNS
    for group in _played_groups(players):
        for call in sorted(AICall.filter(group=group), key=lambda c: c.id):
            parsed = json_text(call.parsed_value) if call.decision == 'message' else call.parsed_value
            yield [
                group.session.code, group.id_in_subsession, call.round_number, 'partner_selection',
                call.candidate_id, call.decision, call.policy, call.model, call.endpoint_host,
                json_text(call.prompt), json_text(call.raw_reply), parsed, round(call.latency_ms, 1),
                call.prompt_tokens, call.completion_tokens, int(call.fallback), call.fallback_reason,
            ]
