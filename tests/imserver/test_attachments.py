"""Attachments (MSG-4, IM-1, SEC-1; SPEC.md §5.18): files go up in parts into Postgres, resumably, are checked
for size, digest and type, may be sent only by who may use them, and come back only to who may see a message that
carries them, by the same rules as history."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.python import Client, ClientError, open_client
from imserver import filetypes
from imserver.store.attachments import window
from pgtrio.bridge import open_store
from protocol.frames import UploadPart
from protocol.kinds import Attachment
from tests.conftest import PASSWORD, Running
from tests.conftest import test_settings as make_settings
from tests.imserver.test_crash import make_user, open_server_process
from tests.imserver.test_rules_support import PEOPLE, Ward, login, open_ward, refused
from tests.imserver.test_rules_words import set_words

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-1.7\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00"
SETTINGS = {"rate": 1000.0, "burst": 1000}
"""Uploads and fetches go a frame at a time: keep the rate limit out of the way."""


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    """Run the test against a server with these settings (overrides the ``settings`` fixture)."""
    return pytest.mark.parametrize("settings", [make_settings(**SETTINGS | overrides)], ids=["settings"])


def png(size: int) -> bytes:
    return PNG + os.urandom(size - len(PNG))


def image_group(*files: Attachment | dict[str, Any], caption: str = "") -> dict[str, Any]:
    images = [msgspec.to_builtins(f) for f in files]
    return {"images": images, "caption": caption} if caption else {"images": images}


async def fetch_or_code(client: Client, file_id: str) -> bytes | str:
    """The whole file as ``client`` may fetch it, or the error code it gets."""
    try:
        return await client.download(file_id)
    except ClientError as exc:
        return exc.code


@with_settings()
async def test_a_file_larger_than_a_frame_goes_up_in_parts_and_comes_back_whole(server: Running) -> None:
    """MSG-4, IM-1: a 200 KiB image is stored in the hospital's Postgres and read back by a member who sees it."""
    async with open_ward(server) as w:
        a, b = w["patient"], w["other"]
        assert a.welcome.limits.files["image/png"] == 10 * 1024 * 1024
        assert a.welcome.limits.files["application/pdf"] == 20 * 1024 * 1024
        data = png(200 * 1024)
        ref = await a.upload(data, "image/png", "B超.png")
        assert ref == Attachment(ref.id, "image/png", len(data), "B超.png")
        assert await a.download(ref.id) == data

        # The body's type, size and name are what the server stored, whatever the client said.
        lie = {"id": ref.id, "mime": "image/gif", "size": 1, "name": "别的.gif"}
        await a.send(w.group, kind="image_group", body=image_group(lie, caption="今天的B超"))
        (message,), _ = await b.history(w.group, limit=1)
        assert message.body == {"images": [msgspec.to_builtins(ref)], "caption": "今天的B超"}
        assert await b.download(ref.id) == data

        middle = await b.request("fetch", id=ref.id, offset=70_000, length=1000)
        assert middle | {"rid": 0} == {
            "op": "ok", "rid": 0, "id": ref.id, "mime": "image/png", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "offset": 70_000,
            "data": data[70_000:71_000],
        }
        tail = await b.request("fetch", id=ref.id, offset=len(data) - 10)
        assert tail["data"] == data[-10:]
        error = await refused(b.request("fetch", id=ref.id, offset=len(data)), "bad_request")
        assert error.field == "offset"


@with_settings()
async def test_an_upload_resumes_where_it_stopped_after_the_connection_drops(server: Running) -> None:
    """MSG-4: beginning the same file again returns the same upload and what it holds; parts sent again are
    harmless; a gap is refused; ending twice answers twice the same."""
    await server.user("alice")
    data = png(150_000)
    digest = hashlib.sha256(data).hexdigest()
    async with login(server, "alice") as a:
        begun = await a.request("upload_begin", mime="image/png", size=len(data), sha256=digest, name="a.png")
        assert begun | {"rid": 0} == {"op": "ok", "rid": 0, "id": begun["id"], "received": 0}
        file_id = begun["id"]
        for offset in (0, 60_000):
            await a.request("upload_part", id=file_id, offset=offset, data=data[offset:offset + 60_000])
        await a.close()  # the connection drops; the server kept what it had

        again = await a.request("upload_begin", mime="image/png", size=len(data), sha256=digest, name="a.png")
        assert (again["id"], again["received"]) == (file_id, 120_000)
        # The last part's answer was lost: the client sends it again, and a part overlapping the end.
        assert (await a.request("upload_part", id=file_id, offset=60_000, data=data[60_000:120_000]))["received"] \
            == 120_000
        overlap = await a.request("upload_part", id=file_id, offset=100_000, data=data[100_000:130_000])
        assert overlap["received"] == 130_000
        gap = await refused(a.request("upload_part", id=file_id, offset=140_000, data=data[140_000:]), "bad_request")
        assert gap.field == "offset"
        await a.request("upload_part", id=file_id, offset=130_000, data=data[130_000:])
        ref = await a.request("upload_end", id=file_id)
        assert await a.request("upload_end", id=file_id) == ref | {"rid": ref["rid"] + 1}
        done = await a.request("upload_begin", mime="image/png", size=len(data), sha256=digest, name="a.png")
        assert (done["id"], done["received"]) == (file_id, len(data))
        assert await a.download(file_id) == data
    assert await parts_of(server, file_id) == [(0, 60_000), (60_000, 60_000), (120_000, 10_000), (130_000, 20_000)]


async def parts_of(server: Running, file_id: str) -> list[tuple[int, int]]:
    """(offset, length) of the rows a file is stored in."""
    async def txn(c: asyncpg.Connection) -> list[tuple[int, int]]:
        rows = await c.fetch(
            'select "offset", length(data) from attachment_parts where attachment_id = $1 order by 1', file_id
        )
        return [(r[0], r[1]) for r in rows]
    return await server.store.run("parts_of", txn)


def contiguous(parts: list[tuple[int, int]], size: int) -> bool:
    """The parts hold each byte of the file exactly once."""
    return [offset for offset, _ in parts] == list(itertools.accumulate((n for _, n in parts[:-1]), initial=0)) \
        and sum(n for _, n in parts) == size


@with_settings()
async def test_the_sdk_resumes_an_upload_over_a_new_connection(server: Running) -> None:
    """MSG-4: the connection drops between two parts; ``upload`` reconnects, resumes and stores each byte once."""
    await server.user("alice")
    data = png(300_000)
    async with login(server, "alice") as a:
        original, parts = a.request, 0

        async def dropping(request: Any, **fields: Any) -> Any:
            nonlocal parts
            if isinstance(request, UploadPart):
                parts += 1
                if parts == 3:
                    assert a._link is not None
                    await a._link.ws.aclose()
            return await original(request, **fields)
        a.request = dropping  # type: ignore[method-assign, assignment]
        first_session = a.welcome.session
        ref = await a.upload(data, "image/png")
        assert parts > 5  # five parts and the one lost
        assert a.welcome.session == first_session  # the same session, over a new connection
        assert await a.download(ref.id) == data
        stored = await parts_of(server, ref.id)
    assert len(stored) == 5 and contiguous(stored, len(data))


@with_settings()
async def test_two_devices_uploading_the_same_file_at_once_store_it_once(server: Running) -> None:
    """MSG-4: the same file begun on two devices at the same time is one upload; parts racing each other are
    stored one at a time, each byte once, and both devices get the same attachment."""
    await server.user("alice")
    data = png(600_000)
    async with login(server, "alice", device="phone") as phone, login(server, "alice", device="pad") as pad:
        refs: list[Attachment] = []

        async def upload(client: Client) -> None:
            refs.append(await client.upload(data, "image/png", "同一张.png"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(upload, phone)
            nursery.start_soon(upload, pad)
        assert refs[0] == refs[1]
        assert contiguous(await parts_of(server, refs[0].id), len(data))
        assert await pad.download(refs[0].id) == data


@with_settings()
async def test_the_declared_size_and_digest_are_checked(server: Running) -> None:
    """MSG-4: bytes beyond the declared size are refused; an end before every byte came is refused; a digest that
    does not match refuses the file for good."""
    await server.user("alice")
    data = png(5000)
    async with login(server, "alice") as a:
        wrong = hashlib.sha256(b"other").hexdigest()
        begun = await a.request("upload_begin", mime="image/png", size=len(data), sha256=wrong)
        file_id = begun["id"]
        too_much = await refused(a.request("upload_part", id=file_id, offset=0, data=data + b"x"), "bad_request")
        assert too_much.field == "data"
        await a.request("upload_part", id=file_id, offset=0, data=data[:4000])
        early = await refused(a.request("upload_end", id=file_id), "bad_request")
        assert early.field == "id"
        await a.request("upload_part", id=file_id, offset=4000, data=data[4000:])
        mismatch = await refused(a.request("upload_end", id=file_id), "bad_request")
        assert mismatch.field == "sha256"
        assert (await refused(a.request("upload_end", id=file_id), "not_found")).field == "id"
        assert await parts_of(server, file_id) == []
        # Begun again with the right digest, it is a new upload.
        again = await a.request("upload_begin", mime="image/png", size=len(data), sha256=wrong)
        assert again["id"] != file_id and again["received"] == 0


SAMPLES = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": PNG + b"\x00\x00\x00\rIHDR",
    "image/gif": b"GIF89a\x01\x00\x01\x00\x80\x00",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "audio/amr": b"#!AMR\n\x3c\x91\x17\x16\xbe\x66",
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb",
    "audio/mp4": b"\x00\x00\x00\x20ftypM4A ",
    "audio/aac": b"\xff\xf1\x50\x80\x02\x1f\xfc\x21",
    "audio/ogg": b"OggS\x00\x02\x00\x00\x00\x00\x00\x00",
    "video/mp4": b"\x00\x00\x00\x18ftypmp42",
    "video/quicktime": b"\x00\x00\x00\x14ftypqt  ",
    "application/pdf": PDF + b"%\xe2\xe3",
}
"""The first bytes of a real file of each type the server accepts."""


@pytest.mark.parametrize("mime", sorted(SAMPLES))
def test_each_accepted_type_is_recognised_by_its_first_bytes_and_nothing_else_passes_for_it(mime: str) -> None:
    """MSG-4: a file of each type passes as that type; an executable, an HTML page or a file of another kind does
    not (ftyp files pass for each other's MP4 types: they are one container)."""
    assert filetypes.matches(mime, SAMPLES[mime][:filetypes.HEAD])
    assert set(filetypes.limits(make_settings())) == set(SAMPLES)
    container = {"audio/mp4", "video/mp4", "video/quicktime"}
    for other, head in SAMPLES.items():
        if other != mime and not {mime, other} <= container:
            assert not filetypes.matches(mime, head[:filetypes.HEAD]), other
    for impostor in (EXE, b"<!DOCTYPE html>", b"PK\x03\x04\x14\x00", b"", b"\xff"):
        assert not filetypes.matches(mime, impostor[:filetypes.HEAD])


@with_settings(max_audio=1000)
async def test_types_sizes_and_content_are_checked(server: Running) -> None:
    """MSG-4: only the accepted types, each up to its size; a file whose bytes are not of its declared type (a
    "PDF" that is an executable) is refused when it ends."""
    await server.user("alice")
    async with login(server, "alice") as a:
        assert a.welcome.limits.files["audio/amr"] == 1000

        async def begin(mime: str, size: int, data: bytes = b"") -> dict[str, Any]:
            digest = hashlib.sha256(data).hexdigest()
            return await a.request("upload_begin", mime=mime, size=size, sha256=digest)
        assert (await refused(begin("application/zip", 100), "bad_request")).field == "mime"
        assert (await refused(begin("text/html", 100), "bad_request")).field == "mime"
        assert (await refused(begin("image/png", 10 * 1024 * 1024 + 1), "file_too_large")).field == "size"
        assert (await refused(begin("audio/amr", 1001), "file_too_large")).field == "size"
        assert (await begin("audio/amr", 1000))["received"] == 0
        assert (await begin("video/mp4", 50 * 1024 * 1024))["received"] == 0

        for mime, content in (("application/pdf", EXE + os.urandom(3000)), ("image/jpeg", png(3000))):
            begun = await begin(mime, len(content), content)
            await a.request("upload_part", id=begun["id"], offset=0, data=content)
            assert (await refused(a.request("upload_end", id=begun["id"]), "bad_request")).field == "mime"
            await refused(a.request("upload_end", id=begun["id"]), "not_found")
        pdf = PDF + os.urandom(3000)
        assert (await a.upload(pdf, "application/pdf", "移植须知.pdf")).size == len(pdf)


@with_settings(upload_quota=250_000)
async def test_a_patient_may_upload_only_so_much_a_day(server: Running) -> None:
    """MSG-4: a patient cannot fill the hospital's disk: past her daily quota she is told when to try again; the
    care team is not limited."""
    async with open_ward(server) as w:
        a = w["patient"]
        await a.upload(png(100_000), "image/png")
        await a.upload(png(100_000), "image/png")
        over = await refused(a.upload(png(100_000), "image/png"), "rate_limited")
        assert over.field == "size" and 86_000_000 < (over.error.retry_after_ms or 0) <= 86_400_000
        await a.upload(png(50_000), "image/png")  # what still fits
        for _ in range(3):
            await w["staff"].upload(png(100_000), "image/png")


@with_settings(upload_expiry=0.5)
async def test_an_unfinished_upload_expires(server: Running) -> None:
    """MSG-4: an upload left unfinished is dropped, parts and all; beginning the file again starts afresh."""
    await server.user("alice")
    data = png(5000)
    digest = hashlib.sha256(data).hexdigest()
    async with login(server, "alice") as a:
        begun = await a.request("upload_begin", mime="image/png", size=len(data), sha256=digest)
        await a.request("upload_part", id=begun["id"], offset=0, data=data[:1000])
        await trio.sleep(1)
        late = await refused(a.request("upload_part", id=begun["id"], offset=1000, data=data[1000:]), "not_found")
        assert late.field == "id"
        again = await a.request("upload_begin", mime="image/png", size=len(data), sha256=digest)
        assert again["id"] != begun["id"] and again["received"] == 0
        assert await parts_of(server, begun["id"]) == []


@given(
    data=st.binary(min_size=1, max_size=300),
    cuts=st.lists(st.integers(1, 299), max_size=12),
    offset=st.integers(0, 299),
    length=st.integers(1, 400),
)
@settings(max_examples=300, deadline=None, database=None)
def test_a_range_read_from_parts_is_the_same_range_of_the_file(
    data: bytes, cuts: list[int], offset: int, length: int
) -> None:
    """Parts of any sizes (whatever the client sent) give back any range of the file exactly."""
    bounds = sorted({0, *(c for c in cuts if c < len(data)), len(data)})
    parts = [(start, data[start:end]) for start, end in itertools.pairwise(bounds)]
    assert window(parts, offset, length) == data[offset:offset + length]


@with_settings()
async def test_a_patient_sends_only_her_own_finished_files_and_staff_forward_the_care_teams(server: Running) -> None:
    """MSG-4: a message naming a file that does not exist, is not finished or is someone else's is refused (one
    answer for all: nothing leaks); staff send a colleague's file and forward what they may see."""
    async with open_ward(server) as w:
        a, b, nurse, owner = w["patient"], w["other"], w["staff"], w["owner"]
        mine = await a.upload(png(3000), "image/png", "a.png")
        hers = await b.upload(png(3000), "image/png", "b.png")
        data = PDF + os.urandom(3000)
        unfinished = await a.request(
            "upload_begin", mime="application/pdf", size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        missing = {"id": "att_nosuchfile0", "mime": "image/png", "size": 3000}
        for body, field in (
            (image_group(mine, missing), "body.images[1]"),
            (image_group(hers), "body.images[0]"),
            ({"title": "报告", "pdf": {"id": unfinished["id"], "mime": "application/pdf", "size": len(data)}},
             "body.pdf"),
        ):
            kind = "lab_report_pdf" if "pdf" in body else "image_group"
            assert (await refused(a.send(w.group, kind=kind, body=body), "not_found")).field == field
        assert (await refused(b.send(w.group, kind="image_group", body=image_group(mine)), "not_found")).field \
            == "body.images[0]"
        assert (await a.history(w.group))[0] == []

        # The doctor's instruction sheet, not sent anywhere yet: a colleague may send it.
        sheet = await owner.upload(PDF + os.urandom(2000), "application/pdf", "移植须知.pdf")
        await nurse.send(w.group, kind="lab_report_pdf", body={"title": "移植须知", "pdf": sheet})
        # A patient's file: staff forward it once they see it in a message, not before.
        assert (await refused(nurse.send(w.group, kind="image_group", body=image_group(mine)), "not_found")).field \
            == "body.images[0]"
        await a.send(w.group, kind="image_group", body=image_group(mine, mine))
        await nurse.send(w.group, kind="image_group", body=image_group(mine), cid="forward-1")
        messages, _ = await b.history(w.group)
        assert [(m.kind, m.body) for m in messages] == [
            ("lab_report_pdf", {"title": "移植须知", "pdf": msgspec.to_builtins(sheet)}),
            ("image_group", image_group(mine, mine)),
            ("image_group", image_group(mine)),
        ]
        assert await carried(server, messages[1].id) == [mine.id]  # once, though shown twice
        assert await b.download(mine.id) == await a.download(mine.id)


@with_settings()
async def test_the_word_filter_screens_a_files_name_but_not_its_id_or_type(server: Running) -> None:
    """IM-11, MSG-4: a patient cannot slip a word past the filter in a file name; a word that happens to occur in a
    file's id or type (``png``) does not break the message."""
    async with open_ward(server) as w:
        await set_words(w, {"png": "mask", "加微信": "block"})
        ref = await w["patient"].upload(png(3000), "image/png", "加我QQ.png")
        await w["patient"].send(w.group, kind="image_group", body=image_group(ref))
        (message,), _ = await w["other"].history(w.group, limit=1)
        assert message.body == {"images": [msgspec.to_builtins(ref) | {"name": "加我QQ.＊＊＊"}]}
        named = await w["patient"].upload(png(3000), "image/png", "加微信.jpg")
        await refused(w["patient"].send(w.group, kind="image_group", body=image_group(named)), "sensitive_words")


async def carried(server: Running, message_id: int) -> list[str] | None:
    """The files a stored message is recorded to carry."""
    async def txn(c: asyncpg.Connection) -> list[str] | None:
        found: list[str] | None = await c.fetchval("select attachments from messages where id = $1", message_id)
        return found
    return await server.store.run("carried", txn)


WHO = ("owner", "staff", "patient", "other", "family", "admin", "outsider")


async def may_fetch(w: Ward, outsider: Client, file_id: str) -> dict[str, bool]:
    """Who gets the file; everyone else must get ``not_found`` (SPEC.md §5.18: as if it did not exist)."""
    found = {}
    for kind in WHO:
        client = outsider if kind == "outsider" else w[kind]
        got = await fetch_or_code(client, file_id)
        assert isinstance(got, bytes) or got == "not_found", (kind, got)
        found[kind] = isinstance(got, bytes)
    return found


def only(*kinds: str) -> dict[str, bool]:
    return {kind: kind in kinds for kind in WHO}


@with_settings()
async def test_a_file_is_served_only_to_who_may_see_a_message_carrying_it(server: Running) -> None:
    """MSG-4 by the visibility rules of history (IM-10, IM-11, IM-12, IM-15, SPEC.md §11.2): members who see the
    message get the file; non-members, members a mention-only message is not for, the others of an isolated member,
    the patients of a refused message, everyone in a banned group and a member who left do not."""
    await server.user("pt_carol")
    async with open_ward(server) as w, login(server, "pt_carol") as outsider:
        a, b, owner = w["patient"], w["other"], w["owner"]
        members = only("owner", "staff", "patient", "other", "family")

        uploaded = await a.upload(png(3000), "image/png")
        assert await may_fetch(w, outsider, uploaded.id) == only("patient")  # not sent: only the uploader
        await a.send(w.group, kind="image_group", body=image_group(uploaded))
        assert await may_fetch(w, outsider, uploaded.id) == members

        for_nurse = await a.upload(png(3000), "image/png")
        await a.send(w.group, kind="image_group", body=image_group(for_nurse), only=w.ref("staff"))
        assert await may_fetch(w, outsider, for_nurse.id) == only("owner", "staff", "patient")

        await owner.request("isolate", conv=w.group, member=w.ref("other"))
        isolated = await b.upload(png(3000), "image/png")
        await b.send(w.group, kind="image_group", body=image_group(isolated))
        assert await may_fetch(w, outsider, isolated.id) == only("owner", "other")
        await owner.request("unisolate", conv=w.group, member=w.ref("other"))
        assert await may_fetch(w, outsider, isolated.id) == only("owner", "other")  # stays hidden (IM-13)

        await set_words(w, {"加微信": "block"})
        refused_file = await a.upload(png(3000), "image/png")
        await refused(a.send(w.group, kind="image_group", body=image_group(refused_file, caption="加微信聊")),
                      "sensitive_words")
        assert await may_fetch(w, outsider, refused_file.id) == only("owner", "staff", "patient")

        await w["admin"].request("group_ban", conv=w.group)
        assert await may_fetch(w, outsider, uploaded.id) == only("patient")
        await w["admin"].request("group_unban", conv=w.group)
        assert await may_fetch(w, outsider, uploaded.id) == members

        await b.request("group_remove", conv=w.group, user=PEOPLE["other"].username)
        assert await may_fetch(w, outsider, uploaded.id) == members | {"other": False}
        await owner.request("group_add", conv=w.group, user=PEOPLE["other"].username)
        assert await may_fetch(w, outsider, uploaded.id) == members  # members see the group's past (history)
        # The doctor forwards it to someone outside the group: she sees it there.
        await owner.send("u:pt_carol", kind="image_group", body=image_group(uploaded))
        assert (await may_fetch(w, outsider, uploaded.id))["outsider"] is True


@with_settings()
async def test_a_read_only_session_fetches_but_does_not_upload(server: Running) -> None:
    """IM-17, MSG-4: the mini-program reads files; every upload operation is ``read_only``."""
    async with open_ward(server) as w, login(server, "other", readonly=True) as mini:
        ref = await w["patient"].upload(png(3000), "image/png")
        await w["patient"].send(w.group, kind="image_group", body=image_group(ref))
        assert await mini.download(ref.id) == await w["patient"].download(ref.id)
        data = png(100)
        await refused(mini.upload(data, "image/png"), "read_only")
        await refused(mini.request("upload_part", id=ref.id, offset=0, data=data), "read_only")
        await refused(mini.request("upload_end", id=ref.id), "read_only")


@with_settings()
async def test_staff_reading_a_patients_file_is_audited(server: Running) -> None:
    """SEC-1: the first read of a patient's file on a staff connection is in the audit log, in the transaction that
    reads it, with why it was allowed; patients reading each other's files and staff reading staff files are not."""
    async with open_ward(server) as w:
        a, nurse = w["patient"], w["staff"]
        image = await a.upload(png(150_000), "image/png")
        await a.send(w.group, kind="image_group", body=image_group(image))
        sheet = await w["owner"].upload(PDF + os.urandom(100), "application/pdf")
        await w["owner"].send(w.group, kind="lab_report_pdf", body={"title": "须知", "pdf": sheet})
        await nurse.download(image.id)  # three ranges, one entry
        await nurse.download(sheet.id)
        await w["other"].download(image.id)
        await w["owner"].download(image.id)
        entries = [e for e in (await w["admin"].request("audit"))["entries"] if e["action"] == "attachment_read"]
        assert [(e["actor"], e["target"], e["conv"], e["detail"]) for e in entries] == [
            (PEOPLE[kind].username, PEOPLE["patient"].username, w.group, {"attachment": image.id, "via": "message"})
            for kind in ("staff", "owner")
        ]
        async with login(server, "staff") as again:  # a new connection is a new read
            await again.request("fetch", id=image.id, length=10)
        assert len([e for e in (await w["admin"].request("audit"))["entries"] if e["action"] == "attachment_read"]) \
            == 3


@pytest.mark.slow
async def test_an_upload_survives_a_server_crash_and_resumes_after_the_restart(db: str, tmp_path: Path) -> None:
    """MSG-4, DESIGN rule 1: the parts a client was told are stored survive a SIGKILL of the server; after the
    restart the same client resumes the upload where it stopped."""
    data = png(400_000)
    async with open_store(db, min_size=1, max_size=1) as store:
        await make_user(store, "alice")
    async with open_server_process(db, tmp_path, rate="1000", burst="1000") as server, \
            open_client(server.url, username="alice", password=PASSWORD) as a:
        begun = await a.request(
            "upload_begin", mime="image/png", size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        for offset in range(0, 200_000, 50_000):
            await a.request("upload_part", id=begun["id"], offset=offset, data=data[offset:offset + 50_000])
        await server.kill()
        await server.start()
        ref = await a.upload(data, "image/png")
        assert ref.id == begun["id"]
        assert await a.download(ref.id) == data
