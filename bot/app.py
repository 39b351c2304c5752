"""The Slack app: a Bolt `AsyncApp` with the `/lm` command, the buttons, mentions, DMs and file
uploads, and authorization as a global middleware.

    app = build_app(get_settings())          # served by `bot.server` (HTTP or Socket Mode)

Listeners parse, authorize (middleware), acknowledge at once, and leave slow work to
background tasks and the queue; blocking storage calls run in a thread pool. This module and
everything it imports stay free of torch, so the bot starts fast and acks while a GPU is busy.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from typing import Any

import sqlalchemy as sa
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import actions, auth, events, handlers
from bot.runtime import BotRuntime
from bot.store import BotStore
from engine.settings import Settings
from storage.db import make_engine

log = logging.getLogger(__name__)
_RUNTIMES: weakref.WeakKeyDictionary[AsyncApp, BotRuntime] = weakref.WeakKeyDictionary()


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def make_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: the bot token, `SLACK_API_URL`, and retries after HTTP 429."""
    token = _secret(settings.slack_bot_token)
    if not token:
        raise ValueError("SLACK_BOT_TOKEN is not set: the bot needs its xoxb- token")
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return client


def build_app(settings: Settings, *, db: sa.Engine | None = None,
              client: AsyncWebClient | None = None) -> AsyncApp:
    """The bot's Bolt app.

    `db` defaults to an engine on `settings.database_url` (migrated already); `client` to an
    `AsyncWebClient` with the bot token and `base_url=settings.slack_api_url`. HTTP requests
    are verified with `SLACK_SIGNING_SECRET` (missing, wrong or stale signatures get 401);
    without one only Socket Mode (`SLACK_APP_TOKEN`) can reach the app.
    """
    client = client or make_client(settings)
    signing_secret = _secret(settings.slack_signing_secret)
    if not signing_secret:
        if not _secret(settings.slack_app_token):
            raise ValueError("SLACK_SIGNING_SECRET is not set (needed unless SLACK_APP_TOKEN "
                             "selects Socket Mode)")
        signing_secret = secrets.token_hex(32)  # HTTP requests can never be verified
    rt = BotRuntime(settings=settings, client=client,
                    store=BotStore(db if db is not None else make_engine(settings.database_url),
                                   admins=settings.admins))
    app = AsyncApp(name="lmops", client=client, signing_secret=signing_secret,
                   process_before_response=False)
    auth.install(app, rt)
    handlers.install(app, rt)
    actions.install(app, rt)
    events.install(app, rt)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s)", body.get("type") or "command",
                  exc_info=error)

    _RUNTIMES[app] = rt
    return app


def runtime(app: AsyncApp) -> BotRuntime:
    """The runtime (settings, store, metrics, client) of an app made by `build_app`."""
    return _RUNTIMES[app]
