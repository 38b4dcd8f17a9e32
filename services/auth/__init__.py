"""Accounts and credentials: password hashing, RS256 tokens and their signing keys, login sessions
with refresh rotation, users and roles, the audit log, login rate limits."""
