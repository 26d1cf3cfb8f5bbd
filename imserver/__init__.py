"""The chat server: connections, identity, conversations, membership, delivery and the store."""
