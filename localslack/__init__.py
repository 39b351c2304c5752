"""A local, in-memory Slack workspace that speaks Slack's protocols.

The Web API the bot calls (``SLACK_API_URL`` pointed at :attr:`LocalSlack.api_url`), the files
upload v2 flow and authenticated downloads, ``response_url`` endpoints, Socket Mode, and
signed deliveries of slash commands, events and clicks to the app. The bot's tests use it
instead of Slack; ``lmops dev`` puts a browser page in front of it.

    async with LocalSlack(deliver_to="http://127.0.0.1:3000/slack/events") as slack:
        await slack.deliver.slash_command("classify I love it")
        posted = await slack.state.async_wait_for(lambda: slack.state.calls("chat.postMessage"))

Nothing here imports torch, the engine, the ``bot`` or the ``lmops`` package.
"""

from .deliver import Deliverer, Delivery, sign
from .messages import WorkspaceError
from .models import (
    ADMIN_DM_ID,
    ADMIN_USER_ID,
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    RANDOM_CHANNEL_ID,
    ApiCall,
    Channel,
    DeliveryRecord,
    Ephemeral,
    File,
    Message,
    Team,
    User,
)
from .ratelimit import SLACK_LIMITS, RateLimiter
from .server import (
    DEFAULT_APP_TOKEN,
    DEFAULT_BOT_TOKEN,
    DEFAULT_SIGNING_SECRET,
    LocalSlack,
    create_app,
)
from .socket_mode import SocketHub
from .state import Workspace

__all__ = [
    "ADMIN_DM_ID", "ADMIN_USER_ID", "APP_ID", "BOT_ID", "BOT_USER_ID", "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN", "DEFAULT_SIGNING_SECRET", "GENERAL_CHANNEL_ID", "RANDOM_CHANNEL_ID",
    "SLACK_LIMITS", "ApiCall", "Channel", "Deliverer", "Delivery", "DeliveryRecord",
    "Ephemeral", "File", "LocalSlack", "Message", "RateLimiter", "SocketHub", "Team", "User",
    "Workspace", "WorkspaceError", "create_app", "sign",
]
