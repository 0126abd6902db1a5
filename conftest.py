# pytest puts this file's folder (the project root) on sys.path, so `pytest` and `python -m pytest`
# both import the project's packages (game_logic, ai_partners, analysis) the same way.
