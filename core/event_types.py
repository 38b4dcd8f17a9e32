"""The event types of the event bus and ``/ws`` (the seed's names). Market channels are public;
account channels need the user's token."""

MARKET_DATA = "MarketData"
CHART_UPDATE = "ChartUpdate"
POSITION_UPDATE = "PositionUpdate"
TRADE_EXECUTED = "TradeExecuted"
AI_SIGNAL_RECEIVED = "AISignalReceived"
BOT_STATUS_UPDATE = "BotStatusUpdate"
# A tuning proposal was created, awaits its owner, was applied, refused, expired or failed.
TUNING_UPDATE = "TuningUpdate"
# A real order changed state (awaiting confirmation, submitted, unknown, open, filled, cancelled, ...).
ORDER_UPDATE = "OrderUpdate"
PUBLIC_TYPES = frozenset({MARKET_DATA, CHART_UPDATE})
ACCOUNT_TYPES = frozenset({POSITION_UPDATE, TRADE_EXECUTED, AI_SIGNAL_RECEIVED, BOT_STATUS_UPDATE, TUNING_UPDATE,
                           ORDER_UPDATE})
