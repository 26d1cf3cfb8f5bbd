"""What a node's content, a procedure's items and a patient's progress look like as messages (EDU-2, EDU-3,
TRT-1). Pure: the bot sends what these return."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec

from bots.framework.channels import Note
from bots.pathway import texts
from bots.pathway.definition import Item, Treatment
from bots.pathway.schedule import Cycle, Position


@dataclass(frozen=True)
class Outgoing:
    """One message: ``text`` for kind ``text``, else ``body``."""

    kind: str
    text: str | None = None
    body: dict[str, Any] | None = None


def item_message(item: Item, files: Mapping[str, dict[str, Any]]) -> Outgoing:
    """``files``: the attachment (as message bodies carry it) of each file a pathway ships."""
    if item.kind == "text":
        return Outgoing("text", texts.ITEM_TEXT.format(title=item.title, text=item.text))
    if item.kind == "link":
        return Outgoing("article", body={"title": item.title, "url": item.url, "summary": item.text})
    if item.kind == "image":
        caption = f"{item.title}\n{item.text}".strip()
        return Outgoing("image_group", body={"images": [files[item.file]], "caption": caption})
    if item.kind == "video":
        return Outgoing("video", body={"video": files[item.file], "seconds": item.seconds})
    if item.kind == "form":
        return Outgoing("form", body={"title": item.title, "fields": msgspec.to_builtins(item.fields),
                                      "note": item.text})
    return Outgoing("signature_request", body={"title": item.title, "text": item.text})


def _item_name(name: str, procedure_day: date, offset: int) -> str:
    if not offset:
        return name
    day = procedure_day + timedelta(days=offset)
    return texts.OFFSET_DAY.format(name=name, month=day.month, day=day.day)


def treatment_message(treatment: Treatment, day: date) -> Outgoing:
    """The ``treatment_items`` message of a procedure on ``day`` (items on other days name their day)."""
    items = [{"name": _item_name(i.name, day, i.day_offset), "time": i.time, "place": i.place, "note": i.note}
             for i in treatment.items]
    return Outgoing("treatment_items", body={"title": treatment.title, "day": day.isoformat(), "items": items})


def treatment_note(treatment: Treatment, day: date) -> Note:
    """The same items as a short note, for WeChat and SMS (TRT-2): each item with its own day, so the fast the
    evening before cannot be read as the evening after."""
    def when(offset: int) -> str:
        on = day + timedelta(days=offset)
        return texts.SHORT_DAY.format(month=on.month, day=on.day)
    items = "；".join(f"{when(i.day_offset)} {i.time} {i.name}".replace("  ", " ") for i in treatment.items)
    return Note(texts.TREATMENT_NOTE_TITLE.format(center=texts.CENTER, title=treatment.title),
                texts.TREATMENT_NOTE.format(items=items))


def progress_text(cycle: Cycle | None, where: Position | None, to_do: Sequence[str] = ()) -> str:
    """The answer to ``/progress``: her node, the next step and its date, what to prepare (EDU-3), and the forms and
    consents still waiting for her (``to_do``, their titles; IM-21)."""
    if cycle is None or where is None:
        return texts.PROGRESS_NONE
    name = cycle.pathway.name
    lines = [texts.PROGRESS_AT.format(pathway=name, node=where.current.name) if where.current
             else texts.PROGRESS_BEFORE.format(pathway=name, node=where.next.name if where.next else "")]
    if to_do:
        lines.append(texts.TO_DO.format(items="、".join(f"「{title}」" for title in to_do)))
    if where.next is None:
        lines.append(texts.ALL_DONE)
        return "\n".join(lines)
    lines.append(texts.NEXT_DATED.format(node=where.next.name, day=where.next_date.isoformat()) if where.next_date
                 else texts.NEXT_UNDATED.format(node=where.next.name))
    if where.next.prepare:
        lines.append(texts.PREPARE.format(prepare=where.next.prepare))
    return "\n".join(lines)


def summary_text(day: date, stats: list[dict[str, Any]], names: Mapping[tuple[str, str], str]) -> str:
    """The daily summary for staff (TRT-3): for items sent that day, how many were read, completed, reminded."""
    lines = [texts.SUMMARY_TITLE.format(day=day.isoformat())]
    for row in stats:
        name = names.get((row["pathway"], row["node"])) or texts.SUMMARY_ORDERS.format(
            pathway=names.get((row["pathway"], ""), row["pathway"]))
        lines.append(texts.SUMMARY_LINE.format(node=name, **{k: row[k] for k in ("sent", "read", "completed",
                                                                               "reminded")}))
    return "\n".join(lines)
