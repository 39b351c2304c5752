"""The in-memory workspace on its own: defaults, threads, files, response URLs, rate limits."""

from __future__ import annotations

import threading

import pytest

from localslack import (
    ADMIN_DM_ID,
    ADMIN_USER_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    RateLimiter,
    Workspace,
    WorkspaceError,
)


def test_default_workspace():
    ws = Workspace()
    assert ws.get_user(ADMIN_USER_ID).is_admin and ws.get_user(ADMIN_USER_ID).name == "you"
    assert ws.get_user(BOT_USER_ID).is_bot
    assert {c.name for c in ws.list_channels() if not c.is_im} == {"general", "random"}
    assert ws.resolve_channel("#general").id == GENERAL_CHANNEL_ID
    assert ws.resolve_channel(ADMIN_USER_ID).id == ADMIN_DM_ID
    assert ws.channel_type(ADMIN_DM_ID) == "im"


def test_concurrent_posts_get_unique_ordered_timestamps():
    ws = Workspace()

    def post(n: int) -> None:
        for i in range(50):
            ws.post_message(GENERAL_CHANNEL_ID, text=f"{n}-{i}", user=ADMIN_USER_ID)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert ws.wait_for(lambda: len(ws.history(GENERAL_CHANNEL_ID)) == 200, timeout=5)
    for t in threads:
        t.join()
    stamps = [m.ts for m in ws.history(GENERAL_CHANNEL_ID)]
    assert len(set(stamps)) == 200 and stamps == sorted(stamps, key=float, reverse=True)
    with pytest.raises(TimeoutError):
        ws.wait_for(lambda: False, timeout=0.01)


def test_copies_are_handed_out():
    ws = Workspace()
    message = ws.post_message(GENERAL_CHANNEL_ID, text="a", user=ADMIN_USER_ID)
    message.text = "changed outside"
    assert ws.get_message(GENERAL_CHANNEL_ID, message.ts).text == "a"


def test_reply_to_a_reply_joins_the_thread():
    ws = Workspace()
    parent = ws.post_message(GENERAL_CHANNEL_ID, text="p", user=ADMIN_USER_ID)
    reply = ws.post_message(GENERAL_CHANNEL_ID, text="r", user=BOT_USER_ID, thread_ts=parent.ts)
    nested = ws.post_message(GENERAL_CHANNEL_ID, text="n", user=ADMIN_USER_ID, thread_ts=reply.ts)
    assert nested.thread_ts == parent.ts
    assert [m.text for m in ws.replies(GENERAL_CHANNEL_ID, reply.ts)] == ["p", "r", "n"]
    with pytest.raises(WorkspaceError, match="thread_not_found"):
        ws.post_message(GENERAL_CHANNEL_ID, text="x", thread_ts="1.000000")


def test_upload_steps_and_listeners():
    ws = Workspace()
    kinds: list[str] = []
    ws.subscribe(lambda kind, data: kinds.append(kind))
    file = ws.create_file("a.tsv", user=BOT_USER_ID, length=3)
    assert file.mimetype == "text/tab-separated-values" and ws.get_file(file.id) is None
    with pytest.raises(WorkspaceError, match="file_not_found"):
        ws.write_upload("wrong", b"abc")
    ws.write_upload(file.upload_id, b"abc")
    assert ws.complete_file(file.id).size == 3 and ws.get_file(file.id).content == b"abc"
    assert kinds == ["file", "file"]


def test_rate_limiter_window():
    limiter = RateLimiter({"chat.update": 2})
    assert limiter.check("chat.update") is None and limiter.check("chat.update") is None
    assert 59 <= limiter.check("chat.update") <= 60
    assert limiter.check("chat.postMessage") is None
    limiter.set("chat.update", None)
    assert limiter.check("chat.update") is None
    with pytest.raises(ValueError, match="chat.update"):
        limiter.set("chat.update", 0)
