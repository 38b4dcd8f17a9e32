"""The gateway as the MCP server's OAuth 2.1 authorization server, and the consent page's REST routes.

``/.well-known/oauth-authorization-server`` (RFC 8414), ``/oauth/register`` (RFC 7591, public clients
only), ``/oauth/authorize`` and ``/oauth/token`` are the MCP SDK's own handlers over ``OAuthProvider``,
which maps them to ``services.oauth``. ``/oauth/authorize`` sends the browser to the dashboard's consent
page (``/oauth/consent?request=…``), which reads the request (``GET /api/oauth/consent/{id}``) and answers
it as the logged-in person (``POST``, approving needs a fresh two-factor step-up): the answer is the URL
that takes the browser back to the client with its code, ``state`` and ``iss`` (RFC 9207). Codes need
PKCE S256, are single-use and short-lived; tokens are for the MCP URL alone (RFC 8707); no refresh
tokens. Client ID Metadata Documents are not supported (an HTTPS ``client_id`` would make the gateway
fetch URLs that clients choose): clients register.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Path
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken
from pydantic import AnyUrl, BaseModel, Field, ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth.deps import AUTH_ERRORS, STEP_UP, CurrentUser, Responses, client_ip
from gateway.auth.schemas import ErrorOut
from gateway.deps import ServicesDep
from gateway.errors import RejectedOut
from gateway.routers.agent_tokens import TierName
from services.errors import TooManyRequests
from services.oauth import AuthorizationRequest, ConsentRequest, OAuthAuthorization, OAuthRefused, PendingCode

if TYPE_CHECKING:
    from services.container import Services

router = APIRouter(tags=["oauth"])

METADATA_PATH = "/.well-known/oauth-authorization-server"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
REGISTER_PATH = "/oauth/register"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# A registration or a token request is a few hundred bytes.
MAX_BODY = 64 * 1024


def authorization_server_metadata(oauth: OAuthAuthorization) -> OAuthMetadata:
    issuer = oauth.issuer
    return OAuthMetadata.model_validate({
        "issuer": issuer, "authorization_endpoint": f"{issuer}{AUTHORIZE_PATH}",
        "token_endpoint": f"{issuer}{TOKEN_PATH}", "registration_endpoint": f"{issuer}{REGISTER_PATH}",
        "scopes_supported": oauth.scopes, "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"], "token_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"], "authorization_response_iss_parameter_supported": True})


class OAuthProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """The SDK's authorization server provider over ``services.oauth``, for one request (its identity
    assertion grant, SEP-990, keeps the SDK's refusal)."""

    def __init__(self, oauth: OAuthAuthorization, ip: str | None) -> None:
        self.oauth = oauth
        self.ip = ip
        self._codes: dict[tuple[str, str], PendingCode | None] = {}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        found = await self.oauth.client(client_id)
        return OAuthClientInformationFull.model_validate(found.record) if found else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        # RFC 7591 §3.2.1 lets the server replace what was asked for; the answer echoes these values.
        # Public clients: PKCE protects the code, and a secret kept on a user's machine would add nothing.
        client_info.token_endpoint_auth_method = "none"
        client_info.client_secret = None
        client_info.client_secret_expires_at = None
        client_info.grant_types = ["authorization_code"]
        # The person picks the tier on the consent page; a registration cannot narrow or widen it.
        client_info.scope = " ".join(self.oauth.scopes)
        # Keys sign nothing for a public client; not kept.
        client_info.jwks = client_info.jwks_uri = None
        try:
            await self.oauth.register(client_info.model_dump(mode="json", exclude_none=True), self.ip)
        except OAuthRefused as refused:
            raise RegistrationError("invalid_redirect_uri" if refused.error == "invalid_redirect_uri"
                                    else "invalid_client_metadata", refused.message) from None

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        request = AuthorizationRequest(
            client_id=client.client_id, redirect_uri=str(params.redirect_uri),
            redirect_uri_explicit=params.redirect_uri_provided_explicitly, state=params.state,
            code_challenge=params.code_challenge, scopes=params.scopes, resource=params.resource)
        try:
            return await self.oauth.begin(request)
        except OAuthRefused as refused:
            raise AuthorizeError(refused.error, refused.message) from None  # type: ignore[arg-type]

    async def pending(self, client_id: str, code: str) -> PendingCode | None:
        # Read once per request: the redirect URI check below and the SDK's load share it.
        key = (client_id, code)
        if key not in self._codes:
            self._codes[key] = await self.oauth.pending_code(client_id, code)
        return self._codes[key]

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str
                                      ) -> AuthorizationCode | None:
        found = await self.pending(client.client_id, authorization_code)
        if found is None:
            return None
        return AuthorizationCode(code=authorization_code, scopes=found.scopes, expires_at=found.expires_at,
                                 client_id=found.client_id, code_challenge=found.code_challenge,
                                 redirect_uri=AnyUrl(found.redirect_uri),
                                 redirect_uri_provided_explicitly=found.redirect_uri_explicit,
                                 resource=found.resource, subject=found.user_id)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: AuthorizationCode) -> OAuthToken:
        try:
            issued = await self.oauth.redeem(client.client_id, authorization_code.code)
        except OAuthRefused as refused:
            raise TokenError("invalid_grant", refused.message) from None
        return OAuthToken(access_token=issued.access_token, token_type="Bearer", expires_in=issued.expires_in,
                          scope=issued.scope)

    # No refresh tokens (a token lives as long as the person chose), and the MCP server verifies its
    # tokens itself (``services.agent_grants``); the SDK's protocol still names these.
    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        return None

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "this server issues no refresh tokens")

    async def load_access_token(self, token: str) -> AccessToken | None:
        return None

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        return None


# --- the SDK's handlers as ASGI endpoints (they need this request's services) ---

Handle = Callable[[Request, OAuthProvider], Awaitable[Response]]


def _endpoint(handle: Handle, methods: list[str], *, cors: bool) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services: Services = request.app.state.services
        response = await handle(request, OAuthProvider(services.oauth, client_ip(request)))
        await response(scope, receive, send)

    limited: ASGIApp = RequestBodyLimitMiddleware(app, MAX_BODY)
    # Browser-based MCP clients read the metadata, register and redeem codes from another origin.
    return CORSMiddleware(limited, allow_origins=["*"], allow_methods=methods,
                          allow_headers=["mcp-protocol-version"]) if cors else limited


def _oauth_error(error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
                 ) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status, headers={**NO_STORE,
                                                                                              **(headers or {})})


async def _metadata(request: Request, provider: OAuthProvider) -> Response:
    return await MetadataHandler(authorization_server_metadata(provider.oauth)).handle(request)


async def _authorize(request: Request, provider: OAuthProvider) -> Response:
    return await AuthorizationHandler(provider).handle(request)


async def _register(request: Request, provider: OAuthProvider) -> Response:
    try:
        await provider.oauth.check_registration_limit(provider.ip)
    except TooManyRequests as busy:
        return _oauth_error("too_many_requests", busy.message, 429, {"Retry-After": str(busy.retry_after_s)})
    options = ClientRegistrationOptions(enabled=True, valid_scopes=provider.oauth.scopes,
                                        default_scopes=provider.oauth.scopes)
    return await RegistrationHandler(provider, options).handle(request)


async def _token(request: Request, provider: OAuthProvider) -> Response:
    form = await request.form()  # kept on the request: the SDK's handler reads the same form
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        provider.oauth.check_resource(fields.get("resource"))
    except OAuthRefused as refused:
        return _oauth_error(refused.error, refused.message)
    code, client_id, redirect = fields.get("code"), fields.get("client_id"), fields.get("redirect_uri")
    if fields.get("grant_type") == "authorization_code" and code and client_id and redirect:
        pending = await provider.pending(client_id, code)
        # RFC 6749 §5.2: another redirect URI than the authorization request's is invalid_grant.
        if pending is not None and pending.redirect_uri_explicit and not _same_uri(redirect, pending.redirect_uri):
            return _oauth_error("invalid_grant", "redirect_uri is not the one of the authorization request")
    return await TokenHandler(provider, ClientAuthenticator(provider)).handle(request)


def _same_uri(given: str, registered: str) -> bool:
    try:
        return str(AnyUrl(given)) == str(AnyUrl(registered))
    except ValidationError:
        return False


router.routes.extend([
    Route(METADATA_PATH, _endpoint(_metadata, ["GET", "OPTIONS"], cors=True), methods=["GET", "OPTIONS"]),
    # Browsers are sent here, never call it from a page: no CORS.
    Route(AUTHORIZE_PATH, _endpoint(_authorize, ["GET", "POST"], cors=False), methods=["GET", "POST"]),
    Route(TOKEN_PATH, _endpoint(_token, ["POST", "OPTIONS"], cors=True), methods=["POST", "OPTIONS"]),
    Route(REGISTER_PATH, _endpoint(_register, ["POST", "OPTIONS"], cors=True), methods=["POST", "OPTIONS"]),
])


# --- the consent page's routes ---

RequestId = Annotated[str, Path(pattern=r"^oar_[A-Za-z0-9_-]{16,64}$",
                                description="the authorization request's ID from the consent page's URL")]
CONSENT_ERRORS: Responses = {
    404: {"model": ErrorOut, "description": "No such authorization request, or it expired"},
    409: {"model": RejectedOut, "description": "The request was answered already"},
}


class ConsentOut(BaseModel):
    request_id: str
    client_id: str
    client_name: str = Field(description="the name the client registered itself with (not verified)")
    client_uri: str | None
    redirect_uri: str = Field(description="where the code goes when the person approves")
    redirect_host: str
    redirect_is_local: bool = Field(description="the code stays on this machine (loopback or an app's own scheme)")
    requested_tier: TierName = Field(description="the highest tier the client asked for")
    tiers: list[TierName] = Field(description="the tiers the person may pick, lowest first")
    max_days: int = Field(description="the longest lifetime the person may give")
    expires_at: datetime = Field(description="until when the request waits for an answer")


class ConsentIn(BaseModel):
    decision: Literal["approve", "deny"]
    tier: TierName | None = Field(None, description="approve: the highest tier the agent may reach")
    expires_in_days: int | None = Field(None, ge=1, le=366, description="approve: the access's lifetime in days")


class ConsentDoneOut(BaseModel):
    redirect_to: str = Field(description="where the browser goes next: the client's redirect URI with `code`, "
                                         "`state` and `iss`, or with `error=access_denied`")


def _consent_out(found: ConsentRequest) -> ConsentOut:
    return ConsentOut(request_id=found.request_id, client_id=found.client_id, client_name=found.client_name,
                      client_uri=found.client_uri, redirect_uri=found.redirect_uri, redirect_host=found.redirect_host,
                      redirect_is_local=found.redirect_is_local, requested_tier=found.requested_tier,
                      tiers=found.tiers, max_days=found.max_days, expires_at=found.expires_at)


@router.get("/api/oauth/consent/{request_id}", response_model=ConsentOut, responses={**AUTH_ERRORS, **CONSENT_ERRORS})
async def get_consent_request(request_id: RequestId, user: CurrentUser, services: ServicesDep) -> ConsentOut:
    """An MCP client's waiting authorization request: who asks, where the code would go, which tiers."""
    return _consent_out(await services.oauth.consent(user, request_id))


@router.post("/api/oauth/consent/{request_id}", response_model=ConsentDoneOut,
             responses={**AUTH_ERRORS, **STEP_UP, **CONSENT_ERRORS,
                        422: {"model": RejectedOut, "description": "A tier above the one asked for, or a bad expiry"}})
async def answer_consent_request(request_id: RequestId, body: ConsentIn, user: CurrentUser,
                                 services: ServicesDep) -> ConsentDoneOut:
    """Approve (after a two-factor step-up: a new grant of the tier and lifetime picked) or deny; the
    answer is the URL the browser goes to next."""
    redirect = await services.oauth.decide(user, request_id, approve=body.decision == "approve", tier=body.tier,
                                           expires_in_days=body.expires_in_days)
    return ConsentDoneOut(redirect_to=redirect)
