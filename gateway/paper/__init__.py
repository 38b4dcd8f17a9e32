"""The gateway's side of paper trading: API shapes, session client helpers and MongoDB reads."""
