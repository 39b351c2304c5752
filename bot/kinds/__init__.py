"""The job kinds as the bot shows them: each module declares its `/lm` sub-command and its
presentation (`bot.kinds.base`). This list is the one place that names them; kinds without a
module here (such as `embed`) have no sub-command and get the default presentation.
"""

from __future__ import annotations

import importlib

from bot.kinds.base import JOB_SUBCOMMANDS, JobRequest, JobSubcommand, Presenter, presenter_for

#: The bot modules of the job kinds, one per line.
BOT_KIND_MODULES = (
    "bot.kinds.classify",
    "bot.kinds.chat",
    "bot.kinds.finetune",
    "bot.kinds.evaluate",
)

for _module in BOT_KIND_MODULES:
    importlib.import_module(_module)

__all__ = ["BOT_KIND_MODULES", "JOB_SUBCOMMANDS", "JobRequest", "JobSubcommand", "Presenter",
           "presenter_for"]
