"""Content, treatment items and progress as messages (EDU-2, EDU-3, TRT-1, TRT-2): every item of the shipped
pathways becomes a message the server accepts, and the patient's progress answer says where she is, what is next,
when, and what to prepare."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bots.pathway.definition import Pathway
from bots.pathway.render import item_message, progress_text, treatment_message, treatment_note
from bots.pathway.schedule import Cycle, position
from protocol.clock import HOSPITAL_ZONE
from protocol.kinds import default_registry
from tests.bots.pathway.test_schedule import IUI, IVF

FILES = {"trigger.mp4": {"id": "att_video_0000001", "mime": "video/mp4", "size": 900_000},
         "retrieval-map.png": {"id": "att_image_0000001", "mime": "image/png", "size": 20_000}}


@pytest.mark.parametrize("pathway", [IVF, IUI], ids=["ivf", "iui"])
def test_every_item_is_a_message_the_server_accepts(pathway: Pathway) -> None:
    registry = default_registry()
    items = [item for node in pathway.nodes for item in (*node.welcome, *node.content)]
    items += [item for rule in pathway.orders for item in rule.items]
    for item in items:
        out = item_message(item, FILES)
        if out.kind == "text":
            assert out.text and item.title in out.text and item.text in out.text
        else:
            registry.validate(out.kind, out.body)
    for node in pathway.nodes:
        for treatment in node.treatment.values():
            out = treatment_message(treatment, date(2026, 12, 16))
            assert registry.validate(out.kind, out.body)[0]["day"] == "2026-12-16"


def test_items_on_another_day_name_it_and_the_short_text_lists_them() -> None:
    retrieval = IVF.node("retrieval").treatment["retrieval"]
    out = treatment_message(retrieval, date(2026, 12, 16))
    assert [i["name"] for i in out.body["items"]] == ["禁食禁水（12月15日）", "到院抽血", "取卵手术"]  # type: ignore[index]
    note = treatment_note(retrieval, date(2026, 12, 16))
    assert note.title == "省妇幼生殖中心取卵提醒"
    assert note.content == ("12月15日 22:00 禁食禁水；12月16日 07:30 到院抽血；12月16日 08:30 取卵手术。"
                            "详情请查看App消息。")  # each item with its day: the fast is the evening before


FRESH = Cycle(IVF, date(2026, 12, 1), {"trigger": date(2026, 12, 14)})


@pytest.mark.parametrize(("now", "expected"), [
    ("2026-11-30 20:00", "您的「试管婴儿」周期已建立，即将开始「建档」阶段。\n下一步：建档，日期 2026-12-01。\n"
                         "需要准备：夫妻双方身份证、结婚证原件，既往检查报告"),
    ("2026-12-05 12:00", "您目前处于「试管婴儿」的「建档」阶段。\n下一步：夜针，日期 2026-12-14。\n"
                         "需要准备：按医嘱准时注射夜针，注射后保留药盒"),
    ("2026-12-13 20:00", "您目前处于「试管婴儿」的「建档」阶段。\n下一步：夜针，日期 2026-12-14。\n"  # the eve
                         "需要准备：按医嘱准时注射夜针，注射后保留药盒"),
    ("2026-12-14 12:00", "您目前处于「试管婴儿」的「夜针」阶段。\n"
                         "下一步：取卵，具体日期由医生确定后会第一时间通知您。\n需要准备：取卵前一晚22点后禁食禁水，丈夫同日取精"),
])
def test_progress_says_where_she_is_what_is_next_and_what_to_prepare(now: str, expected: str) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=HOSPITAL_ZONE)
    assert progress_text(FRESH, position(FRESH, moment)) == expected


def test_progress_without_a_cycle_and_at_the_end() -> None:
    assert progress_text(None, None) == "您目前没有进行中的治疗周期。如有疑问，请联系您的主管护士。"
    done = Cycle(IUI, date(2026, 12, 1), {"insemination": date(2026, 12, 10)})
    answer = progress_text(done, position(done, datetime(2027, 2, 1, tzinfo=HOSPITAL_ZONE)))
    assert answer.endswith("本周期的各阶段已全部完成，祝您一切顺利！")
