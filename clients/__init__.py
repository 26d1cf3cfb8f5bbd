"""Clients of protocol v1: the Python SDK and command line (``clients.python``)."""
