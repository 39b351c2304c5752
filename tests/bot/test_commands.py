"""bot.commands and bot.grammar: the `/lm` parser, its typed commands, the job sub-commands
(options read as the engine's params fields), the SUBCOMMANDS table and roles."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.commands import (
    ROLES,
    SUBCOMMANDS,
    AccessCommand,
    CancelCommand,
    CommandError,
    DatasetsCommand,
    HelpCommand,
    JobCommand,
    JobsCommand,
    ModelsCommand,
    PromoteCommand,
    Subcommand,
    allows,
    parse,
    register,
    required_role,
)
from bot.command_text import from_slack, tokenize
from bot.kinds import JobRequest


def request(name: str, text: str = "", args: tuple[str, ...] = (), **options) -> JobRequest:
    return JobRequest(name, tuple(options.items()), args=args, text=text)


def error_of(text: str) -> str:
    with pytest.raises(CommandError) as info:
        parse(text)
    return info.value.message


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", None])
def test_empty_and_help(text):
    assert parse(text) == HelpCommand()


def test_help_topic():
    assert parse("help finetune") == HelpCommand(topic="finetune")
    assert parse("help fine-tune") == HelpCommand(topic="finetune")
    assert parse("finetune help") == HelpCommand(topic="finetune")
    assert parse("eval --help") == HelpCommand(topic="eval")
    assert "finetune" in error_of("help finetun")


# --- classify / chat --------------------------------------------------------------------------


def test_classify_free_text():
    assert parse("classify I love this product") == request("classify", "I love this product")


def test_classify_options_and_quotes():
    cmd = parse('classify model=sentiment labels="very good, bad" "Great support, thanks!"')
    assert cmd == request("classify", "Great support, thanks!", model="sentiment",
                          labels=("very good", "bad"))
    assert parse("classify labels=bug,feature The app crashes").option("labels") == \
        ("bug", "feature")


def test_free_text_keeps_order_newlines_and_inner_quotes():
    cmd = parse('chat model=smollm2 He said "hi" to me\nthen left')
    assert cmd == request("chat", 'He said "hi" to me\nthen left', model="smollm2")
    # A known option after the text is still an option; the words around it stay in order.
    assert parse("classify great product labels=pos,neg really").text == "great product really"


def test_equals_sign_after_the_text_is_text():
    assert parse("chat what is x=5 about").text == "what is x=5 about"
    assert parse('chat "x=5 is what?"').text == "x=5 is what?"


def test_escaped_quotes_and_curly_quotes():
    assert parse(r'classify "she said \"no\" twice"').text == 'she said "no" twice'
    assert parse("classify labels=“good one,bad” ok").option("labels") == ("good one", "bad")


def test_unbalanced_quote_in_free_text_is_kept():
    assert parse('chat how long is 5" in cm').text == 'how long is 5" in cm'


def test_slack_escapes_and_markup_in_free_text():
    cmd = parse("classify Tom &amp; Jerry &lt;3 <@U123ABC|bob smith> <https://x.io|x.io> <!here>")
    assert cmd.text == "Tom & Jerry <3 @bob smith x.io @here"


def test_classify_and_chat_need_text():
    assert "classify needs a text" in error_of("classify")
    assert "classify needs a text" in error_of("classify model=sentiment")
    assert "chat needs a message" in error_of("chat")


def test_classify_bad_labels_and_model():
    assert "at least two labels" in error_of("classify labels=a hello")
    assert "repeat" in error_of("classify labels=a,a hello")
    assert "empty label" in error_of("classify labels=a,,b hello")
    assert "not a model name" in error_of("classify model=../../etc hello")
    assert "not a model name" in error_of("classify model=/tmp/x hello")
    assert parse("classify model=org/some-model hi").option("model") == "org/some-model"


def test_unknown_option_is_named_with_a_suggestion():
    message = error_of("classify modle=sentiment hello")
    assert "modle" in message and "model=" in message and "labels" in message
    assert "double quotes" in error_of("chat x=5 what is it")
    assert "epoch" in error_of("finetune tickets epoch=3")


def test_option_problems():
    assert "twice" in error_of("classify model=a model=b hi")
    assert "needs a value" in error_of("classify model= hi")
    assert "never closed" in error_of('finetune tickets name="abc')


# --- lists and jobs ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("models", ModelsCommand()), ("datasets", DatasetsCommand()), ("jobs", JobsCommand()),
    ("Models", ModelsCommand()),
])
def test_lists(text, expected):
    assert parse(text) == expected


def test_lists_take_no_arguments():
    assert "doesn't take 'all'" in error_of("models all")
    assert parse("jobs all") == JobsCommand(all_jobs=True)  # `all` adds the predictions
    assert "or `/lm jobs all` for every job" in error_of("jobs some")


@pytest.mark.parametrize("text, expected", [
    ("job 42", JobCommand(job_id=42)), ("job #7", JobCommand(job_id=7)),
    ("cancel 3", CancelCommand(job_id=3)), ("cancel #3", CancelCommand(job_id=3)),
])
def test_job_ids(text, expected):
    assert parse(text) == expected


def test_bad_job_ids():
    assert "a job ID is a number" in error_of("job abc")
    assert "needs a job ID" in error_of("cancel")
    assert "positive" in error_of("job 0")
    assert "doesn't take" in error_of("job 1 2")


# --- finetune / eval / promote ----------------------------------------------------------------


def test_finetune_minimal():
    assert parse("finetune support-tickets") == request("finetune", args=("support-tickets",))
    assert parse("finetune support-tickets").given == {}


def test_finetune_all_options():
    cmd = parse('finetune "my tickets" task=chat base=smollm2 method=ia3 epochs=3 lr=5e-4 '
                "name=tix-v1")
    assert cmd.args == ("my tickets",)
    # the option names are FinetuneParams fields, read as their types
    assert cmd.given == {"task": "chat", "base": "smollm2", "method": "ia3", "epochs": 3.0,
                         "lr": 5e-4, "name": "tix-v1"}
    assert parse("finetune #12").args == ("#12",)


@pytest.mark.parametrize("text, message", [
    ("finetune", "finetune needs a dataset, like `/lm finetune support-tickets`"),
    ("finetune tickets epochs=abc", "epochs must be a number, not 'abc'"),
    ("finetune tickets lr=fast", "lr must be a number, not 'fast'"),
    ("finetune tickets epochs=nan", "epochs must be a number, not 'nan'"),
    ("finetune tickets epochs=0", "epochs must be positive"),
    ("finetune tickets lr=5", "lr must be between 0 and 1"),
    ("finetune tickets method=qlora", "method 'qlora' is not one of: lora, adalora"),
    ("finetune tickets task=regress", "task 'regress' is not one of: classify, chat"),
    ("finetune tickets name=sentiment", "taken by a built-in model"),
    ('finetune tickets name="my model"', "model name 'my model' is not valid"),
    ("finetune tickets extra", "doesn't take 'extra'"),
])
def test_finetune_errors(text, message):
    assert message in error_of(text)


def test_eval():
    assert parse("eval tix-v1 tickets-test") == request("eval", args=("tix-v1", "tickets-test"))
    assert parse("evaluate tix-v1 #4") == request("eval", args=("tix-v1", "#4"))
    assert error_of("eval").startswith("eval needs a model and a dataset, like `/lm eval ")
    assert error_of("eval tix-v1").startswith("eval needs a dataset")


def test_promote():
    assert parse("promote tix-v1") == PromoteCommand(model="tix-v1")
    assert "needs a model" in error_of("promote")


# --- access ------------------------------------------------------------------------------------


def test_access_show():
    assert parse("access") == AccessCommand()
    assert parse("access show") == AccessCommand()


@pytest.mark.parametrize("text", [
    "access grant <@U123ABC|alice> trainer", "access grant <@U123ABC> trainer",
    "access grant trainer <@U123ABC>", "access grant <@U123ABC|alice smith> trainers",
])
def test_access_grant_mentions(text):
    assert parse(text) == AccessCommand(action="grant", user_id="U123ABC", role_name="trainer")


def test_access_revoke():
    assert parse("access revoke <@W0ABC12|bob> admin") == AccessCommand(
        action="revoke", user_id="W0ABC12", role_name="admin")


@pytest.mark.parametrize("text, message", [
    ("access grant @alice trainer", "pick the person from the list"),
    ("access grant <!channel> admin", "one person, not to '@channel'"),
    ("access grant <@U123ABC>", "needs a role: admin or trainer"),
    ("access grant trainer", "needs a user"),
    ("access grant <@U123ABC> <@U456DEF> admin", "one user at a time"),
    ("access grant <@U123ABC> owner", "give one @user and a role"),
    ("access promote", "use `/lm access`"),
])
def test_access_errors(text, message):
    assert message in error_of(text)


# --- unknown sub-commands, roles, table ---------------------------------------------------------


@pytest.mark.parametrize("word, guess", [
    ("finetun", "finetune"), ("clasify", "classify"), ("modles", "models"), ("acess", "access"),
    ("Evaluat", "eval"), ("fine-tun", "finetune"),
])
def test_unknown_subcommand_suggests_the_closest(word, guess):
    message = error_of(f"{word} x")
    assert f"Did you mean `/lm {guess}`?" in message and "/lm help" in message


def test_unknown_subcommand_without_a_close_match():
    message = error_of("xyzzy")
    assert "'xyzzy' is not a /lm command" in message and "Did you mean" not in message


@pytest.mark.parametrize("text, role", [
    ("help", "anyone"), ("classify hi", "anyone"), ("chat hi", "anyone"), ("models", "anyone"),
    ("datasets", "anyone"), ("jobs", "anyone"), ("job 1", "anyone"),
    ("finetune d", "trainer"), ("eval m d", "trainer"), ("promote m", "trainer"),
    ("cancel 1", "owner-or-admin"), ("access", "anyone"),
    ("access grant <@U123ABC> trainer", "admin"), ("access revoke <@U123ABC> admin", "admin"),
])
def test_required_role(text, role):
    assert required_role(parse(text)) == role


def test_allows():
    assert allows("anyone", None)
    assert allows("trainer", "trainer") and allows("trainer", "admin")
    assert not allows("trainer", "user") and not allows("trainer", None)
    assert allows("admin", "admin") and not allows("admin", "trainer")
    assert allows("owner-or-admin", "user", is_owner=True)
    assert not allows("owner-or-admin", "trainer") and allows("owner-or-admin", "admin")
    with pytest.raises(ValueError):
        allows("root", "admin")


def test_table_covers_the_contract():
    assert list(SUBCOMMANDS) == ["help", "classify", "chat", "models", "datasets", "jobs", "job",
                                 "finetune", "eval", "cancel", "promote", "access"]
    for sub in SUBCOMMANDS.values():
        assert sub.role in ROLES and sub.usage and sub.description and sub.example
        assert sub.example.startswith("/lm " + sub.name)
        # Every example parses into a command of this sub-command.
        for example in sub.examples:
            text = example.removeprefix("/lm ").replace("@alice", "<@U0ALICE1>") \
                .replace("@bob", "<@U0BOB123>")
            assert parse(text).name == sub.name


def test_a_later_issue_adds_a_subcommand_by_registering_it():
    from dataclasses import dataclass
    from typing import ClassVar

    from bot.grammar import Command, unregister

    @dataclass(frozen=True)
    class ReportsCommand(Command):
        name: ClassVar[str] = "reports"

    try:
        register(Subcommand("reports", "reports", "List scheduled reports.", ("/lm reports",),
                            "anyone", lambda args: ReportsCommand()))
        assert parse("reports") == ReportsCommand()
        assert required_role(parse("reports")) == "anyone"
        with pytest.raises(ValueError):
            register(Subcommand("reports", "reports", "x", ("/lm reports",), "anyone",
                                lambda args: ReportsCommand()))
    finally:
        unregister("reports")
    assert "Did you mean" not in error_of("reports")
    with pytest.raises(ValueError):
        Subcommand("x", "x", "x", ("/lm x",), "root", lambda args: None)


def test_tokenize_and_from_slack():
    tokens = tokenize('a key="b c" <@U1AB|x y> "d')
    assert [t.value for t in tokens] == ["a", "key=b c", "<@U1AB|x y>", '"d']
    assert tokens[1].quoted and tokens[3].unclosed
    assert from_slack("<#C123|general> <!subteam^S1|@devs> <mailto:a@b.c|a@b.c> &amp;lt;") == \
        "#general @devs a@b.c &lt;"


def test_importing_the_bot_modules_does_not_import_torch():
    code = ("import json, sys; import bot.commands, bot.blocks, bot.help, bot.mrkdwn; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'transformers', 'peft', 'lmops'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
