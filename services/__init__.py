"""The application layer: one method per use case, written once for every channel.

Each method takes a ``Principal`` (who asks, through which channel, with what standing) and typed
input, authorises, and returns a typed result or raises a domain error (``services.errors``). REST
routers, the ``/ws`` hub, MCP tools and Telegram handlers are adapters that map these to their
channel; none of them talks to Temporal or MongoDB itself. Nothing here imports FastAPI, MCP or
aiogram.
"""
