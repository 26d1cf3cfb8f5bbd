"""The launcher: the whole system on one machine with demo data (``imdemo``, ``make demo``).

It starts the chat server, every bot and the outside systems' simulators, so it is the one package that may
import every other part (docs/architecture.md, "Packages and their dependencies"); nothing imports it but tests.
"""
