"""Sensitive words (IM-11, SPEC.md §11.5): admins keep the list; what patients and family send is masked, refused
or flagged per word; the usual evasions are caught; clean Chinese text passes unchanged; changes need no restart.
What staff, admin and bot accounts send is not screened (the current rule, SPEC.md §11.5)."""

from __future__ import annotations

import trio

from imserver import bus
from imserver.words import WordFilter
from tests.conftest import Running
from tests.imserver.test_rules_support import (
    PEOPLE,
    Ward,
    login,
    none_of,
    open_ward,
    pushed_msg,
    pushes,
    refused,
    slow_bus,
)

WORDS = {"代孕": "mask", "QQ": "mask", "加微信": "block", "退款": "flag"}

MASKED = [
    # what a patient sends -> what every member is shown
    ("我想了解代孕的事", "我想了解＊＊的事"),
    ("代 孕", "＊ ＊"),  # inserted space (kept, not masked)
    ("代。孕", "＊＊＊"),  # punctuation inside the word is masked with it
    ("代-孕", "＊＊＊"),
    ("加我ＱＱ", "加我＊＊"),  # full-width letters
    ("加我qQ号", "加我＊＊号"),  # case
    ("加我ｑ．ｑ", "加我＊＊＊"),  # full-width letters and full-width punctuation
    ("加我ＱＱ 号", "加我＊＊ 号"),  # the example of SPEC.md §11.5
    ("Ｑ Ｑ代 。孕", "＊ ＊＊ ＊＊"),  # all of it at once
    ("代孕代孕", "＊＊＊＊"),
    ("时代。孕期", "时＊＊＊期"),  # documented: punctuation is dropped, so this matches across sentences
]
CLEAN = [
    "今天移植后需要注意什么？谢谢医生！",
    "孕酮值是多少算正常，代谢会受影响吗",
    "请问 B 超几点开始？我 8:30 到。",
    "ＱＲ码在哪里扫",
]


PROBE = "探针词"
"""A mask word set last, so that once it works the server's filter holds every word set before it."""


async def set_words(w: Ward, words: dict[str, str]) -> None:
    for word, policy in [*words.items(), (PROBE, "mask")]:
        answer = await w["admin"].request("words_set", word=word, policy=policy)
        assert (answer["word"], answer["policy"]) == (word, policy)
    await mask_in_effect(w, PROBE)


async def mask_in_effect(w: Ward, word: str, seconds: float = 2) -> None:
    """Changes reach the filter through the event bus (SPEC.md §5.15: "within about a second"): wait until a
    mask word works, probing in a group of its own so that the ward's seqs stay as the tests expect."""
    probe = (await w["owner"].request("group_create", name="probe", members=[PEOPLE["patient"].username]))["conv"]
    with trio.fail_after(seconds):
        while True:
            ack = await w["patient"].send(probe, word)
            (message,), _ = await w["owner"].history(probe, after=ack.seq - 1)
            if message.text != word:
                return
            await trio.sleep(0.02)


async def test_mask_catches_the_usual_evasions_and_clean_text_passes_unchanged(server: Running) -> None:
    async with open_ward(server) as w:
        await set_words(w, WORDS)
        sent = [text for text, _ in MASKED] + CLEAN
        expected = [shown for _, shown in MASKED] + CLEAN
        for text in sent:
            await w["patient"].send(w.group, text)
        live = [(await pushed_msg(w["other"], w.group))["text"] for _ in sent]
        assert live == expected
        for kind in ("patient", "family", "staff", "owner"):  # the original is not stored: all see the same
            page, _ = await w[kind].history(w.group)
            assert [m.text for m in page] == expected, kind


async def test_block_refuses_the_message_and_keeps_it_for_staff_only(server: Running) -> None:
    async with open_ward(server) as w, login(server, "patient", device="pad") as pad:
        w.clients["pad"] = pad
        await set_words(w, WORDS)
        error = await refused(w["patient"].send(w.group, "代孕的话可以加微信吗"), "sensitive_words")
        assert error.message == "消息包含不当内容，未能发送"
        seq = 1
        # Live: staff get it, marked refused and with its mask words masked; everyone else, her too, the seq hidden.
        for kind in ("staff", "owner"):
            message = await pushed_msg(w[kind], w.group)
            assert (message["seq"], message["text"], message["refused"]) == (seq, "＊＊的话可以加微信吗", True)
        for kind in ("patient", "pad", "other", "family"):
            assert await pushes(w[kind], "hidden") == [{"op": "hidden", "conv": w.group, "ranges": [[seq, seq]]}]
        # History, sync and unread alike.
        for kind, sees in (("owner", True), ("staff", True), ("patient", False), ("other", False),
                           ("family", False)):
            history = await w[kind].request("history", conv=w.group)
            (synced,) = [c for c in (await w[kind].request("sync"))["convs"] if c["conv"] == w.group]
            for page in (history, synced):
                assert [m["seq"] for m in page["messages"]] == ([seq] if sees else []), kind
                assert page["hidden"] == ([] if sees else [[seq, seq]]), kind
            assert synced["unread"] == (1 if sees else 0), kind
        # Block wins over flag: refused, and audited as refused (the flag push: see the test below).
        await refused(w["patient"].send(w.group, "退款的事加微信说"), "sensitive_words")
        entries = (await w["admin"].request("audit", actor=PEOPLE["patient"].username))["entries"]
        assert [(e["action"], e["conv"], e["detail"]["words"]) for e in entries] == [
            ("message_refused", w.group, ["加微信"]), ("message_refused", w.group, ["加微信"]),
        ]


async def test_a_refused_message_is_not_also_flagged(server: Running) -> None:
    """SPEC.md §11.5: block wins over flag. (Staff used to get a flag push for a blocked message; fixed in 02762fe.)"""
    async with open_ward(server, online=("owner", "patient", "admin")) as w:
        await set_words(w, WORDS)
        await refused(w["patient"].send(w.group, "退款的事加微信说"), "sensitive_words")
        await none_of(w["owner"], "flag")


async def test_flag_delivers_unchanged_and_tells_the_staff(server: Running) -> None:
    async with open_ward(server) as w:
        await set_words(w, WORDS)
        ack = await w["patient"].send(w.group, "我想退款")
        for kind in ("other", "family", "staff", "owner"):
            assert (await pushed_msg(w[kind], w.group))["text"] == "我想退款", kind
        for kind in ("staff", "owner"):
            assert await pushes(w[kind], "flag") == [
                {"op": "flag", "conv": w.group, "seq": ack.seq, "words": ["退款"]}
            ], kind
        for kind in ("patient", "other", "family"):
            await none_of(w[kind], "flag", seconds=0.1)
        (entry,) = (await w["admin"].request("audit", actor=PEOPLE["patient"].username))["entries"]
        assert (entry["action"], entry["conv"], entry["detail"]["words"]) == ("message_flagged", w.group, ["退款"])


async def test_patients_and_family_are_screened_everywhere_staff_and_bots_are_not(server: Running) -> None:
    async with open_ward(server, online=("owner", "staff", "patient", "family", "bot", "admin")) as w:
        await set_words(w, WORDS)
        for kind in ("owner", "staff", "bot"):  # staff and bot messages are not screened (current rule)
            ack = await w[kind].send(w.group, "关于代孕的规定")
            (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
            assert message.text == "关于代孕的规定", kind
        for kind in ("patient", "family"):  # in direct chats too
            ack = await w[kind].send(f"u:{PEOPLE['staff'].username}", "想问代孕")
            assert (await pushed_msg(w["staff"], ack.conv))["text"] == "想问＊＊", kind
        # Every string in a body is screened, and the fallback text is rebuilt from the screened body.
        body = {"name": "代孕诊所", "lat": 31.2, "lon": 121.4, "address": "加我QQ"}
        ack = await w["patient"].send(w.group, kind="location", body=body)
        (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
        assert message.body == body | {"name": "＊＊诊所", "address": "加我＊＊"}
        assert "代孕" not in message.text and "QQ" not in message.text


async def test_the_keys_of_a_body_are_words_too(server: Running) -> None:
    """IM-11: a form's answers are keyed by what she typed; a word there is refused or masked as in a value."""
    async with open_ward(server) as w:
        await set_words(w, WORDS)
        await refused(w["patient"].send(w.group, kind="form_reply", body={"form": 1, "values": {"加微信abc123": 1}}),
                      "sensitive_words")
        ack = await w["patient"].send(w.group, kind="form_reply", body={"form": 1, "values": {"QQ号": "代孕"}})
        (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
        assert message.body == {"form": 1, "values": {"＊＊号": "＊＊"}}


async def test_word_list_changes_apply_without_a_restart(server: Running) -> None:
    async with open_ward(server, online=("owner", "patient", "admin")) as w:
        await w["admin"].request("words_set", word="促排", policy="mask")
        await mask_in_effect(w, "促排", seconds=1)  # SPEC.md §5.15: within about a second
        assert (await w["admin"].request("words_list"))["words"] == [{"word": "促排", "policy": "mask"}]
        await w["admin"].request("words_remove", word="促排")
        with trio.fail_after(1):
            while True:
                ack = await w["patient"].send(w.group, "促排第三天")
                (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
                if message.text == "促排第三天":
                    break
                await trio.sleep(0.02)
        assert (await w["admin"].request("words_list"))["words"] == []


async def test_a_word_applies_to_the_very_next_message(server: Running) -> None:
    async with open_ward(server, online=("owner", "patient", "admin")) as w:
        with slow_bus(bus.WordsChanged):
            await w["admin"].request("words_set", word="禁词", policy="mask")
            ack = await w["patient"].send(w.group, "这是禁词")
        (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
        assert message.text == "这是＊＊"


async def test_a_patient_who_manages_the_group_does_not_see_refused_messages(server: Running) -> None:
    """SPEC.md §11.2: a manager sees refused messages only if a staff or admin account. (Every manager used to;
    fixed in 02762fe.)"""
    async with open_ward(server, online=("owner", "patient", "other", "admin")) as w:
        await w["owner"].request("group_add", conv=w.group, user=PEOPLE["other"].username, role="admin")
        await set_words(w, WORDS)
        await refused(w["patient"].send(w.group, "加微信吗"), "sensitive_words")
        history = await w["other"].request("history", conv=w.group)
        assert (history["messages"], history["hidden"]) == ([], [[1, 1]])


async def test_only_admins_keep_the_list(server: Running) -> None:
    async with open_ward(server, online=("owner", "patient", "admin")) as w:
        for kind in ("owner", "patient"):
            await refused(w[kind].request("words_set", word="代孕", policy="mask"), "forbidden")
            await refused(w[kind].request("words_list"), "forbidden")
        error = await refused(w["admin"].request("words_set", word="。。！", policy="mask"), "bad_request")
        assert error.field == "word"
        error = await refused(w["admin"].request("words_remove", word="没有这个词"), "not_found")
        assert error.field == "word"
        await w["admin"].request("words_set", word="代孕", policy="mask")
        await w["admin"].request("words_set", word="代孕", policy="block")  # changes the policy
        await w["admin"].request("words_set", word="QQ", policy="flag")
        assert (await w["admin"].request("words_list"))["words"] == [
            {"word": "QQ", "policy": "flag"}, {"word": "代孕", "policy": "block"},
        ]


def test_combining_marks_do_not_evade_a_word() -> None:
    words = WordFilter([("vx", "mask"), ("café", "block")])
    assert words.check("加vx\u0308").masked == ["vx"]
    assert words.check("cafe\u0301").blocked == ["café"]
