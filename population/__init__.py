"""Headless population engine: the partner-selection game played by agents on the app's round rules.

    from population import from_mapping, run, run_fast, write_exports
    config = from_mapping(dict(groups=10, selectors_per_group=100, rounds=30, identity='disclosed'))
    result = run(config)          # every round through game_logic.round_engine (the app's calls)
    result = run_fast(config)     # the same rules vectorised with numpy (large societies, sweeps)
    write_exports(result, 'out/')  # decisions.csv, candidates.csv, config.csv: the apps' export schema
    # LLM agents (rules engine only): ai_policies=['llm'], selector_policy='llm', llm_base_url(s),
    # llm_concurrency; their calls are written to ai_calls.csv (the apps' AI-calls schema)

Command line: `python -m population run ...`, `python -m population sweep GRID.toml` (docs/population.md).
"""
from .config import ENGINE_FIELDS, SELECTOR_POLICIES, PopulationConfig, from_mapping
from .engine import Result, run, write_exports
from .fast import FastResult, run_fast

__all__ = ['PopulationConfig', 'from_mapping', 'ENGINE_FIELDS', 'SELECTOR_POLICIES', 'run', 'run_fast', 'Result',
           'FastResult', 'write_exports']
