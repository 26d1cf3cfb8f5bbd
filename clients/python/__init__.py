"""The Python SDK for protocol v1, on trio: used by bots, load tests, the CLI and the tests."""

from clients.python.client import Client, ClientError, ConnectionLost, open_client

__all__ = ["Client", "ClientError", "ConnectionLost", "open_client"]
