"""Running the platform for real: a private PostgreSQL, `otree prodserver` in its own process group.

Used by the production tests (tests/production), the browser tests and the benchmarks; the shell
entry points are scripts/postgres.sh and scripts/prodserver.sh.
"""
