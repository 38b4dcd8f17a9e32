"""Ground truth and order faults under ``/sim``: ``GET /sim/orders`` (every spot, USDⓈ-M and algo
order of every key, with duplicate client IDs counted), ``GET /sim/positions``, ``/sim/order_faults``."""

from __future__ import annotations

import json
from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.futures_book import text
from sim.exchange.futures_venue import FuturesVenue
from sim.exchange.order_faults import parse_fault
from sim.exchange.spot_book import SpotBook


def _masked(api_key: str) -> str:
    return "****" + api_key[-4:]


def trading_control_routes(venue: FuturesVenue, spot: SpotBook) -> list[Route]:
    book, engine, faults = venue.book, venue.engine, venue.faults

    async def orders(request: Request) -> Response:
        plain = [
            {**o.view(), "api_key": _masked(o.api_key), "algoId": o.algo_id, "market": "usdm"}
            for o in book.orders.values()
        ]
        plain += [{**o.view(), "api_key": _masked(o.api_key), "market": "spot"} for o in spot.orders.values()]
        algos = [{**a.view(), "api_key": _masked(a.api_key), "market": "usdm"} for a in book.algos.values()]
        # Orders an algo order created carry its client ID; count only what clients submitted.
        submitted = Counter(("usdm", o.api_key, o.client_order_id) for o in book.orders.values() if o.algo_id is None)
        submitted.update(("usdm", a.api_key, a.client_algo_id) for a in book.algos.values())
        submitted.update(("spot", o.api_key, o.client_order_id) for o in spot.orders.values())
        repeated = {client_id: n for (_, _, client_id), n in submitted.items() if n > 1}
        return JSONResponse(
            {"orders": plain, "algo_orders": algos, "duplicates": len(repeated), "duplicate_client_ids": repeated}
        )

    async def positions(request: Request) -> Response:
        rows = []
        for account in book.accounts.values():
            for symbol, position in account.positions.items():
                if position.amount:
                    rows.append(
                        {
                            "api_key": _masked(account.api_key),
                            "symbol": symbol,
                            "positionAmt": text(position.amount),
                            "entryPrice": text(position.entry_price),
                            "markPrice": text(engine.mark_now(symbol)),
                            "unRealizedProfit": text(engine.unrealized(account, symbol)),
                            "walletBalance": text(account.wallet),
                        }
                    )
        return JSONResponse(rows)

    async def order_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                faults.faults.append(parse_fault(json.loads(await request.body() or b"{}")))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        elif request.method == "DELETE":
            faults.faults.clear()
            faults.hidden_until.clear()
        return JSONResponse(faults.view())

    async def release(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            if (
                not isinstance(body, dict)
                or set(body) - {"client_id"}
                or not isinstance(body.get("client_id", ""), str)
            ):
                raise ValueError("the body may only hold client_id (a string); without it every held reply goes")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"released": faults.release(body.get("client_id"))})

    return [
        Route("/sim/orders", orders),
        Route("/sim/positions", positions),
        Route("/sim/order_faults", order_faults, methods=["GET", "POST", "DELETE"]),
        Route("/sim/order_faults/release", release, methods=["POST"]),
    ]
