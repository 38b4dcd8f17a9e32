"""The bot's routers, one per area; ``gateway.telegram.bot`` includes them in this order."""
