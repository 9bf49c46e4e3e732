"""The round machinery, one concern a module (docs/rounds.md):

- clock: round market times and numbers, and whether a live round is due;
- claim: the Round row as a claim with a lease, and the phase it has reached;
- run: `round_run`, one round's steps as data moving from phase to phase;
- context: what each agent is handed (account views, decision history, standings);
- invoke: the agents asked concurrently, their answers recorded;
- execute: decisions turned into trading actions and their outcomes;
- trigger: run a round now (the next, or the live one due);
- replay: the replay clock's loop.

Who runs rounds (Celery, or a thread in this process) is competitions.dispatch, a door above
this package.

Import from the modules; this package imports nothing so that none of them forms a cycle.
"""
