"""``/bot<token>/<method>``: the Bot API endpoint. Token, parameters, injected faults, the method, the log.

Answers are Telegram's: ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description",
"parameters"?}`` with the error code as the HTTP status (429 also sends ``Retry-After``).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sim.telegram.config import SimTelegramConfig
from sim.telegram.errors import BotApiError, not_found, unauthorized
from sim.telegram.faults import BadGateway, Faults
from sim.telegram.ledger import RequestLog
from sim.telegram.methods import BotMethods
from sim.telegram.params import Params, read_params

BAD_GATEWAY_PAGE = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
                    "</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n")


def _error_response(error: BotApiError) -> Response:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


class BotApiEndpoint:
    def __init__(self, config: SimTelegramConfig, methods: BotMethods, faults: Faults, log: RequestLog) -> None:
        self.config = config
        self.methods = methods
        self.faults = faults
        self.log = log

    async def handle(self, request: Request) -> Response:
        started = time.time()
        method = request.path_params["method"]
        params = Params({})
        status, description, fault = 200, None, None
        try:
            if not hmac.compare_digest(request.path_params["token"].encode(), self.config.token.encode()):
                raise unauthorized()
            if not self.methods.knows(method):
                raise not_found()
            params = await read_params(request, self.config.max_body_bytes)
            rule = self.faults.take(method)
            if rule is not None:
                fault = rule.kind
                raise rule.error()
            result: Any = await self.methods.call(method, params)
            response: Response = JSONResponse({"ok": True, "result": result})
        except BotApiError as error:
            status, description = error.status, error.description
            response = _error_response(error)
        except BadGateway:
            status, description = 502, "Bad Gateway (HTML page)"
            response = HTMLResponse(BAD_GATEWAY_PAGE, status_code=502)
        self.log.record(method=method, params=params.loggable(), status=status, description=description,
                        fault=fault, started=started)
        return response
