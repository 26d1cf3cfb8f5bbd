"""Message kinds: a schema and a text fallback for each (SPEC.md §6.1, MSG-2).

A client that does not know a kind shows the message's ``text``, which the
server fills from the kind's fallback, so new kinds never break old clients.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from protocol.codec import encode, field_path
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import MAX_CONTENT_BYTES, AttachmentId, FieldDef, KindDefinition, Mime, Short

MAX_CUSTOM_KINDS = 50
MAX_DEFINITION_BYTES = 16 * 1024
"""A custom kind's definition, encoded: with ``MAX_CUSTOM_KINDS`` of them, ``kinds`` answers in one frame (SPEC.md
§6.2, §3.7)."""

Long = Annotated[str, Meta(max_length=4000)]
SeqOf = Annotated[int, Meta(ge=1, le=2**63 - 1)]
"""The seq of another message in the same conversation."""
Url = Annotated[str, Meta(max_length=2000, pattern=r"^(?:https?|app|mp)://")]


class Action(msgspec.Struct, frozen=True, omit_defaults=True):
    """An entry the client opens: an app page, a mini-program page or a web page."""

    label: Short
    target: Url


class Notice(msgspec.Struct, frozen=True, omit_defaults=True):
    """A system notice, optionally with an action entry."""

    title: Short
    content: Long
    action: Action | None = None


class Location(msgspec.Struct, frozen=True, omit_defaults=True):
    """A place on a map."""

    name: Short
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    address: Long = ""


class Article(msgspec.Struct, frozen=True, omit_defaults=True):
    """A link to an article with its title and summary."""

    title: Short
    url: Url
    summary: Long = ""


_DAY = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_CLOCK = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"
DAY_PATTERN = rf"^{_DAY}\Z"
"""The shape of a day, ``YYYY-MM-DD``, in ASCII digits (``\\d`` takes any digit, ``$`` a final newline)."""
CLOCK_PATTERN = rf"^{_CLOCK}\Z"
"""A time of day, ``HH:MM``, 00:00 to 23:59."""
Day = Annotated[str, Meta(pattern=DAY_PATTERN)]
"""A day of the calendar; a struct holding one names it in ``days`` (``_Dated``), which checks that it exists."""
DayOrNone = Annotated[str, Meta(pattern=rf"^(?:{_DAY})?\Z")]
"""A ``Day``, or ``""`` for none."""
Clock = Annotated[str, Meta(pattern=CLOCK_PATTERN)]
ClockOrNone = Annotated[str, Meta(pattern=rf"^(?:{_CLOCK})?\Z")]
"""A ``Clock``, or ``""`` for none."""


def parse_day(text: str) -> date | None:
    """The day ``text`` names as ``YYYY-MM-DD``, or None: ASCII digits, and a day the calendar has.

    ``date.fromisoformat`` alone also takes ``20260101`` and week dates, hence the shape first.
    """
    if re.match(DAY_PATTERN, text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30, 2026-13-01, 0000-01-01
        return None


def parse_clock(text: str) -> time | None:
    """The time of day ``text`` names as ``HH:MM``, or None."""
    if re.match(CLOCK_PATTERN, text) is None:
        return None
    return time(int(text[:2]), int(text[3:]))


class _Dated(msgspec.Struct, frozen=True, omit_defaults=True):
    """A body with fields of type ``Day``, named in ``days``: a pattern can check a day's shape, not that it exists."""

    days: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self.days:
            value = getattr(self, name)
            if value and parse_day(value) is None:
                raise ValueError(f"`{name}` {value!r} is not a day of the calendar")


class Attachment(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stored file (image, voice, video, PDF) a message points to (MSG-4).

    The server checks that the sender may use it and replaces ``mime``, ``size`` and
    ``name`` with what it stored (SPEC.md §5.18).
    """

    id: AttachmentId
    mime: Mime
    size: Annotated[int, Meta(ge=0, le=2**53 - 1)]
    name: Annotated[str, Meta(max_length=200)] = ""


class Voice(msgspec.Struct, frozen=True, omit_defaults=True):
    """A voice message (MSG-1 kind 2)."""

    audio: Attachment
    seconds: Annotated[int, Meta(ge=1, le=600)]


class ImageGroup(msgspec.Struct, frozen=True, omit_defaults=True):
    """Up to nine images with a caption (MSG-1 kind 5; can be kept as a quick reply)."""

    images: Annotated[list[Attachment], Meta(min_length=1, max_length=9)]
    caption: Long = ""


class Video(msgspec.Struct, frozen=True, omit_defaults=True):
    """A video with its length and a cover image (MSG-1 kind 6)."""

    video: Attachment
    seconds: Annotated[int, Meta(ge=1, le=600)]
    cover: Attachment | None = None


class LabValue(msgspec.Struct, frozen=True, omit_defaults=True):
    """One result line: 雌二醇 E2 2350 pg/mL, reference range, and whether it is out of range."""

    name: Short
    value: Annotated[str, Meta(min_length=1, max_length=60)]
    unit: Annotated[str, Meta(max_length=30)] = ""
    range: Annotated[str, Meta(max_length=60)] = ""
    flag: Literal["", "high", "low", "abnormal"] = ""


class LabReport(_Dated, frozen=True, omit_defaults=True):
    """A lab report as data (MSG-1 kind 9), e.g. from the HIS or an outside hospital."""

    title: Short
    collected: Day
    days = ("collected",)
    values: Annotated[list[LabValue], Meta(min_length=1, max_length=200)]
    lab: Annotated[str, Meta(max_length=200)] = ""


class LabReportImages(msgspec.Struct, frozen=True, omit_defaults=True):
    """A lab report as photos of the paper (MSG-1 kind 10)."""

    title: Short
    images: Annotated[list[Attachment], Meta(min_length=1, max_length=20)]


class LabReportPdf(msgspec.Struct, frozen=True, omit_defaults=True):
    """A lab report as a PDF file (MSG-1 kind 11)."""

    title: Short
    pdf: Attachment


class File(msgspec.Struct, frozen=True, omit_defaults=True):
    """A document to keep, e.g. a PDF instruction sheet sent as a quick reply (MSG-3)."""

    title: Short
    file: Attachment
    note: Long = ""


class TreatmentItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One thing to do on a day of treatment, with its time and place."""

    name: Short
    time: ClockOrNone = ""
    place: Annotated[str, Meta(max_length=200)] = ""
    note: Long = ""


class TreatmentItems(_Dated, frozen=True, omit_defaults=True):
    """What a patient does on a day of treatment (MSG-1 kind 12, TRT-2)."""

    title: Short
    day: Day
    items: Annotated[list[TreatmentItem], Meta(min_length=1, max_length=50)]
    days = ("day",)


class FollowUp(_Dated, frozen=True, omit_defaults=True):
    """A follow-up notice, usually with a form to fill in (MSG-1 kind 13)."""

    title: Short
    content: Long
    due: DayOrNone = ""
    days = ("due",)
    form: Action | None = None


FormInt = Annotated[int, Meta(ge=-(2**53), le=2**53)]
"""An ``int`` field's value: exact in every client's numbers (SPEC.md §6.2)."""
_FIELD_TYPES: dict[str, Any] = {
    "text": Short, "long_text": Long, "int": FormInt,
    "number": Annotated[float, Meta(ge=-1e15, le=1e15)], "bool": bool, "date": Day, "time": Clock, "url": Url,
    "attachment": Attachment,
}


class Form(msgspec.Struct, frozen=True, omit_defaults=True):
    """A form the person fills in, e.g. at a treatment node (EDU-2); the answer is a ``form_reply``."""

    title: Short
    fields: Annotated[list[FieldDef], Meta(min_length=1, max_length=30)]
    note: Long = ""


class FormReply(msgspec.Struct, frozen=True, omit_defaults=True):
    """The values of a filled-in form; the bot that sent the form checks them (``check_form_reply``)."""

    form: SeqOf
    """The seq of the ``form`` message in the same conversation."""
    values: Annotated[dict[str, str | FormInt | float | bool | None], Meta(max_length=30)]


class SignatureRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """A text the person signs, e.g. an informed consent (EDU-2); the answer is a ``signature``."""

    title: Short
    text: Long


class Signature(msgspec.Struct, frozen=True, omit_defaults=True):
    """A handwritten signature as an image; when it was signed is the message's commit time."""

    request: SeqOf
    """The seq of the ``signature_request`` message in the same conversation."""
    image: Attachment


def form_schema(form: Form) -> type[msgspec.Struct]:
    """A form's fields as a schema, built and checked as a custom kind's are.

    Error handling: raises ProtocolError(BAD_REQUEST) naming the bad field definition (``fields[1].name``).
    """
    return compile_kind(KindDefinition(name="form", title=form.title, fields=form.fields, fallback=form.title))[0]


def check_form_reply(form: Form, values: dict[str, Any]) -> dict[str, Any]:
    """The reply's values checked against the form's fields (a form is checked like a custom kind).

    Error handling: raises ProtocolError(BAD_REQUEST) with ``field`` ``values.<field>``.
    """
    try:
        return msgspec.to_builtins(msgspec.convert(values, form_schema(form)))
    except msgspec.ValidationError as exc:
        inner = field_path(str(exc))
        raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), field=f"values.{inner}" if inner else "values") from None


def _shown(value: Any) -> str:
    if isinstance(value, Attachment):
        return value.name
    if isinstance(value, bool):
        return "是" if value else "否"
    return "" if value is None else str(value)


def compile_kind(definition: KindDefinition) -> tuple[type[msgspec.Struct], Callable[[Any], str]]:
    """The schema and fallback of an admin-defined kind.

    Error handling: raises ProtocolError(BAD_REQUEST) naming the bad part of the definition.
    """
    def bad(message: str, field: str) -> ProtocolError:
        return ProtocolError(ErrorCode.BAD_REQUEST, message, field=field)
    fields: list[tuple[str, Any, Any]] = []
    for index, f in enumerate(definition.fields):
        if any(f.name == other.name for other in definition.fields[:index]):
            raise bad(f"field {f.name!r} is defined twice", f"fields[{index}].name")
        if (f.type == "choice") != bool(f.choices):
            raise bad("choices are given for, and only for, a choice field", f"fields[{index}].choices")
        kind = Literal[tuple(f.choices)] if f.type == "choice" else _FIELD_TYPES[f.type]
        fields.append((f.name, kind, msgspec.NODEFAULT) if f.required else (f.name, kind | None, None))
    names = {f.name for f in definition.fields}
    try:
        parts = list(string.Formatter().parse(definition.fallback))
    except ValueError as exc:
        raise bad(f"fallback: {exc}", "fallback") from None
    for _, name, spec, conversion in parts:
        if name is not None and (name not in names or spec or conversion):
            raise bad(f"fallback may name only the kind's fields, as {{field}}; not {{{name}}}", "fallback")
    schema = msgspec.defstruct(
        f"Custom_{definition.name}", fields, bases=(_Dated,), kw_only=True, frozen=True, omit_defaults=True,
        namespace={"days": tuple(f.name for f in definition.fields if f.type == "date")},
    )

    def fallback(value: Any) -> str:
        return definition.fallback.format_map({name: _shown(getattr(value, name)) for name in names}).strip()
    return schema, fallback


@dataclass(frozen=True)
class KindSpec:
    """How one kind is validated and shown to clients that do not know it."""

    schema: type[msgspec.Struct]
    fallback: Callable[[Any], str]
    check: Callable[[Any], object] | None = None
    """Rules the schema cannot say (a form's field definitions); raises ProtocolError naming the field."""


class KindRegistry:
    """The kinds a server accepts: the built-in ones and those admins define (MSG-1)."""

    def __init__(self) -> None:
        self._kinds: dict[str, KindSpec] = {}
        self.custom: dict[str, KindDefinition] = {}

    def register(
        self, name: str, schema: type[msgspec.Struct], fallback: Callable[[Any], str],
        check: Callable[[Any], object] | None = None,
    ) -> None:
        self._kinds[name] = KindSpec(schema, fallback, check)

    def define(self, definition: KindDefinition) -> None:
        """Add or replace an admin-defined kind; a built-in kind cannot be redefined.

        Error handling: raises ProtocolError(BAD_REQUEST) for a bad definition.
        """
        if definition.name == "text" or (definition.name in self._kinds and definition.name not in self.custom):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{definition.name!r} is a built-in kind", field="name")
        self.register(definition.name, *compile_kind(definition))
        self.custom[definition.name] = definition

    def names(self) -> list[str]:
        return ["text", *sorted(self._kinds)]

    def bodies(self) -> dict[str, type[msgspec.Struct]]:
        """The body struct of each kind but ``text``, by name (what ``protocol.schema`` exports)."""
        return {name: self._kinds[name].schema for name in sorted(self._kinds)}

    def validate(self, kind: str, body: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        """Check ``body`` against the kind's schema; return the normalised body and its fallback text.

        Together they hold at most ``MAX_CONTENT_BYTES``, so every message fits in an answer (SPEC.md §3.7): a
        fallback may repeat a field, and a masked word takes more bytes than it did (§11.5).

        Error handling: raises ProtocolError(BAD_REQUEST) naming the bad field, or ``body`` when it is too large.
        """
        spec = self._kinds.get(kind)
        if spec is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown kind {kind!r}", field="kind")
        if body is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"kind {kind!r} needs a body", field="body")
        try:
            value = msgspec.convert(body, spec.schema)
        except msgspec.ValidationError as exc:
            inner = field_path(str(exc))
            field = f"body.{inner}" if inner else "body"
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), field=field) from None
        if spec.check is not None:
            try:
                spec.check(value)
            except ProtocolError as exc:
                exc.field = f"body.{exc.field}" if exc.field else "body"
                raise
        normalised, text = msgspec.to_builtins(value), spec.fallback(value)
        if len(encode(normalised)) + len(encode(text)) > MAX_CONTENT_BYTES:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"body and text take more than {MAX_CONTENT_BYTES} bytes",
                                field="body")
        return normalised, text

    def attachments(self, kind: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """The attachment maps inside a body ``validate`` returned, each with its path (``body.images[1]``).

        The maps are the body's own, so the server can fill in what it stored (SPEC.md §5.18).
        """
        spec = self._kinds.get(kind)
        found: list[tuple[str, dict[str, Any]]] = []
        if spec is not None:
            _find_attachments(msgspec.convert(body, spec.schema), body, "body", found)
        return found


def _find_attachments(value: Any, raw: Any, path: str, found: list[tuple[str, dict[str, Any]]]) -> None:
    """Walk a validated body and its builtin form side by side; custom kinds with attachments work too."""
    if isinstance(value, Attachment):
        found.append((path, raw))
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            if name in raw:
                _find_attachments(getattr(value, name), raw[name], f"{path}.{name}", found)
    elif isinstance(value, list):
        for index, (item, raw_item) in enumerate(zip(value, raw, strict=True)):
            _find_attachments(item, raw_item, f"{path}[{index}]", found)


def default_registry() -> KindRegistry:
    """The kinds every server knows. Fallback texts are Chinese: patients read them."""
    registry = KindRegistry()
    registry.register("notice", Notice, lambda n: f"【通知】{n.title}：{n.content}")
    registry.register("location", Location, lambda loc: f"【位置】{loc.name} {loc.address}".rstrip())
    registry.register("article", Article, lambda a: f"【文章】{a.title} {a.url}")
    registry.register("voice", Voice, lambda v: f"【语音】{v.seconds}秒")
    registry.register("image_group", ImageGroup, lambda g: f"【图片】{g.caption or f'{len(g.images)}张'}")
    registry.register("video", Video, lambda v: f"【视频】{v.seconds}秒")
    registry.register("lab_report", LabReport, _lab_report_text)
    registry.register("lab_report_images", LabReportImages, lambda r: f"【检验报告】{r.title}（{len(r.images)}张图片）")
    registry.register("lab_report_pdf", LabReportPdf, lambda r: f"【检验报告】{r.title}（PDF）")
    registry.register("treatment_items", TreatmentItems, _treatment_text)
    registry.register("followup", FollowUp, lambda f: f"【随访】{f.title}：{f.content}")
    registry.register("file", File, lambda f: f"【文件】{f.title}")
    registry.register("form", Form, lambda f: f"【表单】{f.title}（请在App中填写）", check=form_schema)
    registry.register("form_reply", FormReply, lambda r: "【表单】已填写")
    registry.register("signature_request", SignatureRequest, lambda r: f"【电子签名】{r.title}（请在App中签署）")
    registry.register("signature", Signature, lambda s: "【电子签名】已签署")
    return registry


def _lab_report_text(report: LabReport) -> str:
    marks = {"high": "↑", "low": "↓", "abnormal": "*", "": ""}
    values = "；".join(f"{v.name} {v.value}{v.unit}{marks[v.flag]}" for v in report.values[:10])
    more = "…" if len(report.values) > 10 else ""
    return f"【检验报告】{report.title}（{report.collected}）：{values}{more}"


def _treatment_text(plan: TreatmentItems) -> str:
    items = "；".join(f"{i.time} {i.name}".strip() for i in plan.items)
    return f"【治疗项目】{plan.day} {plan.title}：{items}"
