"""The Telegram bot (aiogram 3): freqtrade's everyday commands as adapters over the application layer.

``bot`` builds the aiogram ``Bot`` (pointed at ``telegram_api_url``: Telegram, or the local stand-in
``sim/telegram``) and the ``Dispatcher`` with one router per area; ``polling`` is our own long-polling
loop with a durable offset (``services.telegram_updates``); ``access`` decides who is obeyed
(``services.telegram_links``); the handlers call the services and format their figures for a phone.
"""
