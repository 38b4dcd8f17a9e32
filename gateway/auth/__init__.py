"""Identity and least privilege: passwords, RS256 tokens, login sessions, roles, audit, WebSocket auth."""
