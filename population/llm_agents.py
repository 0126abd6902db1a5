"""LLM agents of the rules engine: AI candidates on ai_partners' llm policy and selectors on its llm selector
policy, their calls run concurrently and logged in the apps' AI-calls schema.

The agents are the apps' own objects (`ai_partners.llm.LLMPartner`, `ai_partners.selectors.LLMSelector`), so
prompts, request, retries, the timeout budget, validation and fallback reasons are those of a live session.
A round's calls of one step (every candidate's message, then every selector's choice, then every return) go
to a thread pool of `llm_concurrency` workers and are gathered in seat order (`Executor.map`), so the result
depends on the replies, never on which reply arrives first.

Why threads and not asyncio: the client the apps use is synchronous httpx (its streamed body and budget
checks are what make `timeout` mean the same in both places); an async twin would be a second client to keep
equal. The calls wait on the network, where Python releases the GIL, so threads overlap them just as well.
"""
from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ai_partners import GameView
from ai_partners.config import read_settings
from ai_partners.llm import LLMPartner
from ai_partners.selectors import (PastRound, SelectorCard, SelectorSettings, SelectorView, make_selector,
                                   resolve_params)
from game_logic import round_engine, society
from game_logic.export_schema import json_text
from study.text import clean_text  # the apps' cleaning of LLM text (no oTree import)

__all__ = ['LLMCalls', 'partner_settings', 'selector_settings', 'value_used', 'timed_out', 'candidate_view',
           'selector_view', 'ai_call_row', 'llm_stats', 'TIMED_OUT_REASONS']

# As the apps (study/ai_decisions.FALLBACK_TIMED_OUT): a decision not made in time counts as a human's
# timed-out one (an empty message, 0 returned), for either kind, so hidden/false_label cannot tell them apart.
TIMED_OUT_REASONS = ('deadline', 'timeout')


def timed_out(decision) -> bool:
    return decision.fallback_reason in TIMED_OUT_REASONS


def value_used(decision, what: str):
    """What the round uses of a candidate's AI decision (the AI-calls row keeps the fallback's value)."""
    if timed_out(decision):
        return '' if what == 'message' else 0
    return clean_text(decision.value) if what == 'message' else decision.value


def partner_settings(config, base_url: str = ''):
    """ai_partners' settings from the run's session config (llm_model, timeout, …), on one endpoint. The AI
    description the selectors read is the LLM's when any AI seat uses it (as the app's ai_policy says)."""
    c = config.session
    values = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
    values['ai_policy'] = 'llm' if 'llm' in config.ai_policy_names else 'scripted'
    if base_url:
        values['llm_base_url'] = base_url
    return read_settings(values)


def selector_settings(config, group: int, selector_id: str, key: str, base_url: str) -> SelectorSettings:
    """An llm selector seat's settings: the endpoint, and its fallback (random or a learner of selector_params,
    drawn per key as the app's resolve_params does)."""
    model = 'rescorla_wagner' if config.llm_selector_fallback == 'random' else config.llm_selector_fallback
    params = resolve_params(dict(config.selector_params), model, config.session.ai_seed, key)
    return SelectorSettings(policy='llm', model=model, params=params,
                            fallback='random' if config.llm_selector_fallback == 'random' else 'learner',
                            perceive_ai_above=config.perceive_ai_above, ai_seed=config.session.ai_seed,
                            llm=partner_settings(config, base_url))


def candidate_view(config, round_number: int, treatment: str, history: list) -> GameView:
    """An AI candidate's view (partner_selection/round_flow.ai_view): rules, round, its badge, its own rounds."""
    c = config.session
    return GameView(role='candidate', round_number=round_number, num_rounds=config.rounds, endowment=c.endowment,
                    multiplier=c.multiplier, max_message_length=c.max_message_length, identity=treatment,
                    shown_as=society.badge_for('ai', treatment), history=history)


def selector_view(config, round_number: int, treatment: str, cards, past: list) -> SelectorView:
    """A selector seat's pages (partner_selection/round_flow.selector_view): the rules, its cards (letter,
    badge, message: no ids, no kinds), its history table and its earlier rounds. `past` is its earlier
    rounds as (round_engine cards, round_engine.Choice, selector outcome, treatment)."""
    c = config.session
    history = []
    if c.show_history:
        rounds = [round_engine.SelectorRound(rnd, t, {card.candidate_id: card.label for card in old},
                                             choice.candidate_id, outcome.amount_sent, outcome.amount_returned)
                  for rnd, old, choice, outcome, t in past]
        history = [dataclasses.asdict(row) for row in round_engine.selector_history(rounds)]
    past_rounds = [PastRound(rnd, _selector_cards(old),
                             next((card.label for card in old if card.candidate_id == choice.candidate_id), ''),
                             outcome.amount_sent, outcome.amount_returned)
                   for rnd, old, choice, outcome, _ in past]
    return SelectorView(
        round_number=round_number, num_rounds=config.rounds, endowment=c.endowment, multiplier=c.multiplier,
        max_message_length=c.max_message_length, num_selectors=config.selectors_per_group,
        num_human=c.num_human_candidates, num_ai=c.num_ai_candidates,
        ai_description=partner_settings(config).ai_description, identity_shown=treatment != 'hidden',
        selector_chooses_amount=c.selector_chooses_amount,
        elicit_beliefs=round_engine.elicits_beliefs(c.elicit_beliefs, treatment), belief_bonus=c.belief_bonus,
        belief_payment=c.belief_payment, persistent_labels=c.persistent_candidate_labels,
        cards=_selector_cards(cards), history=history, past_rounds=past_rounds,
        candidate_capacity=c.candidate_capacity)


def _selector_cards(cards) -> tuple:
    return tuple(SelectorCard(card.label, card.badge, card.message) for card in cards)


class LLMCalls:
    """The run's LLM agents and its pool: `messages`, `choices` and `returns` each take one step's calls of a
    round (in seat order) and give their AIDecisions in that order, logging one AI-calls row per call."""

    def __init__(self, config):
        self.config = config
        self.urls = config.base_urls
        self.pool = ThreadPoolExecutor(max_workers=config.llm_concurrency, thread_name_prefix='population-llm')
        self.rows = []  # AI-calls rows (dicts), in round, step and seat order
        self._partners = {}
        self._selectors = {}

    def close(self):
        self.pool.shutdown(wait=True)

    def _url(self, index: int) -> str:
        return self.urls[index % len(self.urls)]

    def partner(self, key: str, preset, index: int) -> LLMPartner:
        """The LLM candidate `key` on the endpoint of call position `index` (one endpoint per position, so the
        K servers of a list share every step's load); `preset` (an ai_partners Preset) is its fallback."""
        url = self._url(index)
        if (key, url) not in self._partners:
            partner = LLMPartner(dataclasses.replace(partner_settings(self.config, url), ai_policy='llm'), key)
            partner.preset = preset  # the run's preset, which may be a custom one
            self._partners[key, url] = partner
        return self._partners[key, url]

    def selector(self, group: int, selector_id: str, key: str, index: int):
        url = self._url(index)
        if (key, url) not in self._selectors:
            self._selectors[key, url] = make_selector(selector_settings(self.config, group, selector_id, key, url), key)
        return self._selectors[key, url]

    def _run(self, agents, jobs, call) -> list:
        """call(agent, job) for every job on the pool; results in job order, whatever order they finish in.
        The agents are made here, before the pool starts, so no two threads build one."""
        return list(self.pool.map(call, agents, jobs))

    def messages(self, jobs) -> list:
        """jobs: (group, round, candidate_id, key, preset, view)."""
        agents = [self.partner(j[3], j[4], i) for i, j in enumerate(jobs)]
        decisions = self._run(agents, jobs, lambda agent, j: agent.write_message(j[5]))
        for (group, rnd, cid, *_), decision in zip(jobs, decisions):
            self.rows.append(ai_call_row(self.config, group, rnd, cid, decision))
        return decisions

    def choices(self, jobs) -> list:
        """jobs: (group, round, selector_id, key, view)."""
        agents = [self.selector(j[0], j[2], j[3], i) for i, j in enumerate(jobs)]
        decisions = self._run(agents, jobs, lambda agent, j: agent.decide('choice', j[4]))
        for (group, rnd, sid, *_), decision in zip(jobs, decisions):
            self.rows.append(ai_call_row(self.config, group, rnd, sid, decision))
        return decisions

    def returns(self, jobs) -> list:
        """jobs: (group, round, candidate_id, key, preset, view, slot)."""
        def decide(agent, j):
            slot = j[6]
            return agent.decide_return(j[5], slot.amount_sent, slot.amount_received, counterpart=slot.selector_code)
        agents = [self.partner(j[3], j[4], i) for i, j in enumerate(jobs)]
        decisions = self._run(agents, jobs, decide)
        for (group, rnd, cid, *_), decision in zip(jobs, decisions):
            self.rows.append(ai_call_row(self.config, group, rnd, cid, decision))
        return decisions


def ai_call_row(config, group: int, round_number: int, agent_id: str, decision) -> dict:
    """One AI-calls row (export_schema.AI_CALL_COLUMNS) as study/ai_decisions.ai_call_rows writes it."""
    from .engine import group_cells  # the export cells every export row carries

    if decision.decision == 'message':
        parsed = json_text(clean_text(str(decision.value)))  # as the app stores it
    elif decision.decision == 'choice':
        parsed = json.dumps(decision.value, ensure_ascii=False, sort_keys=True)
    else:
        parsed = int(decision.value)
    return dict(
        session_code=config.session_code, group_id=group, round=round_number, app='partner_selection',
        candidate_id=agent_id, decision=decision.decision, policy=decision.policy, model=decision.model or '',
        endpoint_host=decision.endpoint_host or '', prompt_json=json_text(decision.prompt),
        raw_reply_json=json_text(decision.raw_reply), parsed_value=parsed,
        latency_ms=round(float(decision.latency_ms or 0), 1), prompt_tokens=decision.prompt_tokens,
        completion_tokens=decision.completion_tokens, fallback=int(bool(decision.fallback)),
        fallback_reason=decision.fallback_reason or '', **group_cells(config))


LLM_STAT_COLUMNS = ('llm_calls', 'llm_fallbacks', 'llm_prompt_tokens', 'llm_completion_tokens',
                    'llm_latency_ms_total', 'llm_latency_ms_p95')


def llm_stats(rows) -> dict:
    """A run's LLM calls summed: calls, fallbacks, prompt and completion tokens (those reported), total and
    95th-percentile latency in ms. A run without LLM calls: zeros, and NaN for the percentile."""
    latencies = np.array([float(r['latency_ms']) for r in rows])
    return dict(
        llm_calls=len(rows), llm_fallbacks=sum(int(r['fallback']) for r in rows),
        llm_prompt_tokens=sum(r['prompt_tokens'] or 0 for r in rows),
        llm_completion_tokens=sum(r['completion_tokens'] or 0 for r in rows),
        llm_latency_ms_total=round(float(latencies.sum()), 1),
        llm_latency_ms_p95=round(float(np.percentile(latencies, 95)), 1) if len(rows) else float('nan'))
