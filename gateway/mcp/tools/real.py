"""MCP tools (to be written)."""
