"""Logging in and out of the web UI: the session cookie carries the same token the API issues.

The cookie is HttpOnly and SameSite=Lax (Secure when PUBLIC_URL is https); beside it a readable
`csrf` cookie the pages repeat in every state-changing request (tenancy/deps.py checks it).
"""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from messaging_whatsapp.config import Settings
from messaging_whatsapp.deps import Context
from messaging_whatsapp.errors import EngineError, Forbidden, RateLimited, Unauthorized
from messaging_whatsapp.tenancy import users
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    form_field,
    get_principal,
)
from messaging_whatsapp.tenancy.tokens import issue_token
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page

router = APIRouter(include_in_schema=False)

LOGIN_PATH = "/login"
HOME_PATH = "/inbox"
# The login form's timezone is the product's home until a tenant is known.
LOGIN_TIMEZONE = "America/Sao_Paulo"


async def page_principal(request: Request, context: Context) -> Principal | None:
    """The logged-in user of a page request, or None (the page then sends them to /login)."""
    if SESSION_COOKIE not in request.cookies and "authorization" not in request.headers:
        return None
    try:
        return await get_principal(request, context)
    except Unauthorized:
        return None


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def set_csrf_cookie(response: Response, token: str, settings: Settings) -> None:
    """The readable double-submit cookie (scripts repeat it in X-CSRF-Token)."""
    response.set_cookie(
        CSRF_COOKIE, token, httponly=False, samesite="lax", secure=_secure(settings), path="/"
    )


def _login_page(
    request: Request, settings: Settings, error: str | None = None, email: str = "", status: int = 200
) -> Response:
    t = Texts(choose_language(request), LOGIN_TIMEZONE)
    token = request.cookies.get(CSRF_COOKIE, "")
    fresh = len(token) < 32
    if fresh:
        token = secrets.token_urlsafe(32)
    response = page(request, "login.html", t, status_code=status, error=error, email=email, csrf=token)
    if fresh:
        set_csrf_cookie(response, token, settings)
    return response


@router.get(LOGIN_PATH)
async def login_form(request: Request, context: Context) -> Response:
    """The login page (a logged-in user goes straight to the inbox)."""
    if await page_principal(request, context) is not None:
        return RedirectResponse(HOME_PATH, status_code=303)
    return _login_page(request, context.settings)


@router.post(LOGIN_PATH)
async def login(request: Request, context: Context) -> Response:
    """Check the form; on success set the session and go to the inbox, else show why in place."""
    t = Texts(choose_language(request), LOGIN_TIMEZONE)
    body = await request.body()
    email = form_field(body, "email")[:320]
    password = form_field(body, "password")[:1024]
    try:
        await check_csrf(request)
    except Forbidden:
        return _login_page(request, context.settings, t("The form expired. Try again."), email, 403)
    client = request.client.host if request.client else "unknown"
    try:
        async with context.sessions() as session:
            user = await users.log_in(session, request.app.state.login_throttle, email, password, client)
            await session.commit()
    except RateLimited as exc:
        message = t("Too many attempts. Try again in {seconds} s.", seconds=math.ceil(exc.retry_after))
        return _login_page(request, context.settings, message, email, 429)
    except EngineError:
        return _login_page(request, context.settings, t("Wrong email or password."), email, 401)
    response = RedirectResponse(HOME_PATH, status_code=303)
    settings = context.settings
    response.set_cookie(
        SESSION_COOKIE,
        issue_token(user, settings),
        max_age=settings.jwt_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path="/",
    )
    # A new CSRF token per session: one read before login is of no use after it.
    set_csrf_cookie(response, secrets.token_urlsafe(32), settings)
    return response


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    """End the browser's session and go back to the login page (the session's principal check
    refuses it without the CSRF token, like any change)."""
    await page_principal(request, context)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(context.settings), httponly=True)
    return response
