"""REST and WebSocket routers: thin adapters over the application layer (``services``)."""
