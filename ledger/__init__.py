"""The tamper-evident log: RFC 8785 entries on an RFC 6962 Merkle tree, C2SP signed checkpoints.

Knows bytes, hashes and keys; nothing about batteries.
"""
