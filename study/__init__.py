"""What both games share at the oTree boundary (imports oTree; the pure rules are in game_logic/).

- `config`: the typed session config, built and validated once per session, and the page timeouts.
- `ai_decisions`: background AI decisions (the AICall model, the gate page, start/collect, has_bots).
- `export`: export rows as dicts keyed by the export schema.
"""
