"""Postgres from trio, shared by the chat server and the bots: the asyncpg bridge and numbered migrations.

Its own package because bots keep their own state (jobs, positions) in their own
schema but may not import the server (docs/architecture.md, the dependency direction), and the
rules for using asyncpg under trio (docs/architecture.md, measured findings) must live in one place.
"""
