"""The MCP adapter: tools over the application layer (``services``), served on the MCP port."""
