"""Message kinds: body schemas and fallback texts (SPEC.md §6.1)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from protocol.errors import ErrorCode, ProtocolError
from protocol.kinds import KindRegistry, default_registry

NOTE = "https://ivf.example.org/notes/42"

# kind, body, normalised body, fallback text: the table of SPEC.md §6.1.
GOOD: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "notice",
        {"title": "取卵术前须知", "content": "术前一晚 22 点后禁食禁水。"},
        {"title": "取卵术前须知", "content": "术前一晚 22 点后禁食禁水。", "action": None},
        "【通知】取卵术前须知：术前一晚 22 点后禁食禁水。",
    ),
    (
        "notice",
        {"title": "缴费提醒", "content": "", "action": {"label": "去缴费", "target": "mp://pages/pay?id=3"}},
        {"title": "缴费提醒", "content": "", "action": {"label": "去缴费", "target": "mp://pages/pay?id=3"}},
        "【通知】缴费提醒：",
    ),
    (
        "notice",
        {"title": "t", "content": "c", "action": {"label": "l", "target": "app://visit/7"}, "colour": "red"},
        {"title": "t", "content": "c", "action": {"label": "l", "target": "app://visit/7"}},
        "【通知】t：c",
    ),
    (
        "location",
        {"name": "生殖中心门诊", "lat": 31.2304, "lon": 121.4737, "address": "门诊楼 5 层"},
        {"name": "生殖中心门诊", "lat": 31.2304, "lon": 121.4737, "address": "门诊楼 5 层"},
        "【位置】生殖中心门诊 门诊楼 5 层",
    ),
    (
        "location",
        {"name": "北门", "lat": -90, "lon": 180},
        {"name": "北门", "lat": -90.0, "lon": 180.0},
        "【位置】北门",
    ),
    (
        "article",
        {"title": "胚胎移植后注意事项", "url": "https://ivf.example.org/a/7", "summary": "饮食与作息"},
        {"title": "胚胎移植后注意事项", "url": "https://ivf.example.org/a/7", "summary": "饮食与作息"},
        "【文章】胚胎移植后注意事项 https://ivf.example.org/a/7",
    ),
    (
        "article",
        {"title": "A", "url": "http://x"},
        {"title": "A", "url": "http://x"},
        "【文章】A http://x",
    ),
]

PIC = {"id": "att_0123456789", "mime": "image/jpeg", "size": 204800}
PDF = {"id": "att_pdf_98765432", "mime": "application/pdf", "size": 90000, "name": "B超报告.pdf"}
AUDIO = {"id": "att_voice_0001", "mime": "audio/aac", "size": 12000}
CLIP = {"id": "att_clip_000001", "mime": "video/mp4", "size": 3_000_000}
E2 = {"name": "雌二醇 E2", "value": "2350", "unit": "pg/mL", "range": "<4000"}
PNG = PIC | {"mime": "image/png"}
RESULT = {"name": "result", "type": "choice", "label": "结果", "choices": ["阳性", "阴性"]}
HCG = {"name": "hcg", "type": "number", "label": "HCG", "required": False}
P = {"name": "孕酮 P", "value": "1.8", "unit": "ng/mL", "range": "<1.5", "flag": "high"}

# MSG-1 kinds 2, 5, 6, 9–13 (1, 3, 4, 7, 8 are text, notice and its action, location, article above).
GOOD += [
    ("voice", {"audio": AUDIO, "seconds": 12}, {"audio": AUDIO, "seconds": 12}, "【语音】12秒"),
    ("image_group", {"images": [PIC, PIC], "caption": "促排第 8 天 B 超"},
     {"images": [PIC, PIC], "caption": "促排第 8 天 B 超"}, "【图片】促排第 8 天 B 超"),
    ("image_group", {"images": [PIC]}, {"images": [PIC]}, "【图片】1张"),
    ("video", {"video": CLIP, "seconds": 95, "cover": PIC}, {"video": CLIP, "seconds": 95, "cover": PIC},
     "【视频】95秒"),
    ("lab_report", {"title": "性激素六项", "collected": "2026-11-20", "values": [E2, P], "lab": "检验科"},
     {"title": "性激素六项", "collected": "2026-11-20", "values": [E2, P], "lab": "检验科"},
     "【检验报告】性激素六项（2026-11-20）：雌二醇 E2 2350pg/mL；孕酮 P 1.8ng/mL↑"),
    ("lab_report_images", {"title": "外院 AMH", "images": [PIC]}, {"title": "外院 AMH", "images": [PIC]},
     "【检验报告】外院 AMH（1张图片）"),
    ("lab_report_pdf", {"title": "B 超报告", "pdf": PDF}, {"title": "B 超报告", "pdf": PDF},
     "【检验报告】B 超报告（PDF）"),
    ("treatment_items",
     {"title": "取卵日", "day": "2026-12-03", "items": [{"name": "空腹抽血", "time": "07:30", "place": "门诊 2 楼"},
                                                    {"name": "取卵手术", "time": "09:00"}]},
     {"title": "取卵日", "day": "2026-12-03", "items": [{"name": "空腹抽血", "time": "07:30", "place": "门诊 2 楼"},
                                                    {"name": "取卵手术", "time": "09:00"}]},
     "【治疗项目】2026-12-03 取卵日：07:30 空腹抽血；09:00 取卵手术"),
    ("followup", {"title": "移植后第 14 天", "content": "请填写验孕结果", "due": "2026-12-17",
                  "form": {"label": "填写", "target": "mp://pages/followup?id=9"}},
     {"title": "移植后第 14 天", "content": "请填写验孕结果", "due": "2026-12-17",
      "form": {"label": "填写", "target": "mp://pages/followup?id=9"}},
     "【随访】移植后第 14 天：请填写验孕结果"),
    ("file", {"title": "取卵术后注意事项", "file": PDF}, {"title": "取卵术后注意事项", "file": PDF},
     "【文件】取卵术后注意事项"),
    ("form", {"title": "验孕结果", "fields": [RESULT, HCG]}, {"title": "验孕结果", "fields": [RESULT, HCG]},
     "【表单】验孕结果（请在App中填写）"),
    ("form_reply", {"form": 7, "values": {"result": "阳性", "hcg": 1200}},
     {"form": 7, "values": {"result": "阳性", "hcg": 1200}}, "【表单】已填写"),
    ("signature_request", {"title": "知情同意书", "text": "本人自愿接受治疗。"},
     {"title": "知情同意书", "text": "本人自愿接受治疗。"}, "【电子签名】知情同意书（请在App中签署）"),
    ("signature", {"request": 8, "image": PNG}, {"request": 8, "image": PNG}, "【电子签名】已签署"),
]

# kind, body, the field the error names.
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("notice", {"title": "", "content": "c"}, "body.title"),
    ("notice", {"title": "x" * 201, "content": "c"}, "body.title"),
    ("notice", {"title": 5, "content": "c"}, "body.title"),
    ("notice", {"title": "t", "content": "c" * 4001}, "body.content"),
    ("notice", {"title": "t", "content": "c", "action": "open"}, "body.action"),
    ("notice", {"title": "t", "content": "c", "action": {"label": "l", "target": "ftp://x"}}, "body.action.target"),
    (
        "notice",
        {"title": "t", "content": "c", "action": {"label": "l", "target": "javascript:alert(1)"}},
        "body.action.target",
    ),
    ("notice", {"title": "t", "content": "c", "action": {"label": "", "target": NOTE}}, "body.action.label"),
    ("location", {"name": "x", "lat": 90.5, "lon": 0}, "body.lat"),
    ("location", {"name": "x", "lat": 0, "lon": -180.01}, "body.lon"),
    ("location", {"name": "x", "lat": float("nan"), "lon": 0}, "body.lat"),
    ("location", {"name": "x", "lat": True, "lon": 0}, "body.lat"),
    ("location", {"name": "x", "lat": "31.2", "lon": 0}, "body.lat"),
    ("location", {"name": "", "lat": 0, "lon": 0}, "body.name"),
    ("location", {"name": "x", "lat": 0, "lon": 0, "address": 7}, "body.address"),
    ("article", {"title": "t", "url": "www.example.org"}, "body.url"),
    ("article", {"title": "t", "url": "https://x", "summary": "s" * 4001}, "body.summary"),
    ("article", {"title": "t" * 201, "url": "https://x"}, "body.title"),
    ("voice", {"audio": AUDIO, "seconds": 0}, "body.seconds"),
    ("voice", {"audio": AUDIO | {"id": "../../etc/passwd"}, "seconds": 3}, "body.audio.id"),
    ("image_group", {"images": []}, "body.images"),
    ("image_group", {"images": [PIC] * 10}, "body.images"),
    ("image_group", {"images": [PIC | {"mime": "text/html"}]}, "body.images[0].mime"),
    ("video", {"video": CLIP, "seconds": 601}, "body.seconds"),
    ("lab_report", {"title": "t", "collected": "20/11/2026", "values": [E2]}, "body.collected"),
    ("lab_report", {"title": "t", "collected": "2026-11-20", "values": []}, "body.values"),
    ("lab_report", {"title": "t", "collected": "2026-11-20", "values": [E2 | {"flag": "bad"}]}, "body.values[0].flag"),
    ("lab_report_pdf", {"title": "t", "pdf": PDF | {"size": -1}}, "body.pdf.size"),
    ("treatment_items", {"title": "t", "day": "2026-12-03", "items": [{"name": "x", "time": "25:00"}]},
     "body.items[0].time"),
    ("followup", {"title": "t", "content": "c", "form": {"label": "l", "target": "file:///x"}}, "body.form.target"),
    ("file", {"title": "t", "file": PDF | {"id": "pdf"}}, "body.file.id"),
    ("form", {"title": "t", "fields": []}, "body.fields"),
    ("form", {"title": "t", "fields": [RESULT | {"choices": []}]}, "body.fields[0].choices"),
    ("form", {"title": "t", "fields": [HCG, HCG]}, "body.fields[1].name"),
    ("form_reply", {"form": 0, "values": {}}, "body.form"),
    ("form_reply", {"form": 3, "values": {"x": [1]}}, "body.values[...]"),
    ("signature", {"request": 3}, "body.image"),
]

# A body with a required field missing: the error names the body (SPEC.md §7 allows the parent).
MISSING: list[tuple[str, dict[str, Any]]] = [
    ("notice", {"content": "c"}),
    ("location", {"name": "x", "lat": 0}),
    ("article", {"title": "t"}),
]


@pytest.fixture
def registry() -> KindRegistry:
    return default_registry()


def test_default_kinds(registry: KindRegistry) -> None:
    assert registry.names() == [
        "text", "article", "file", "followup", "form", "form_reply", "image_group", "lab_report",
        "lab_report_images", "lab_report_pdf",
        "location", "notice", "signature", "signature_request", "treatment_items", "video", "voice",
    ]


@pytest.mark.parametrize(("kind", "body", "normalised", "fallback"), GOOD)
def test_good_body(
    registry: KindRegistry, kind: str, body: dict[str, Any], normalised: dict[str, Any], fallback: str
) -> None:
    got_body, got_text = registry.validate(kind, body)
    assert got_text == fallback
    expected = {k: v for k, v in normalised.items() if v is not None}
    assert {k: v for k, v in got_body.items() if v is not None} == expected


@pytest.mark.parametrize(("kind", "body", "field"), BAD)
def test_bad_body(registry: KindRegistry, kind: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        registry.validate(kind, body)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.field == field
    assert not info.value.fatal


@pytest.mark.parametrize(("kind", "body"), MISSING)
def test_missing_required_body_field(registry: KindRegistry, kind: str, body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        registry.validate(kind, body)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.field is not None and info.value.field.startswith("body")


@pytest.mark.parametrize("kind", ["survey", "text", "Notice", ""])
def test_unknown_kind(registry: KindRegistry, kind: str) -> None:
    """``text`` is not a body kind: the server handles it before the registry."""
    with pytest.raises(ProtocolError) as info:
        registry.validate(kind, {"title": "t", "content": "c"})
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.field == "kind"


@pytest.mark.parametrize("kind", default_registry().names()[1:])
def test_missing_body(registry: KindRegistry, kind: str) -> None:
    with pytest.raises(ProtocolError) as info:
        registry.validate(kind, None)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.field == "body"


def test_registered_kind() -> None:
    """A server may register more kinds (SPEC.md §6.1); they validate the same way."""

    class Survey(msgspec.Struct, frozen=True):
        title: str
        questions: int

    registry = default_registry()
    registry.register("survey", Survey, lambda s: f"【问卷】{s.title}")
    assert "survey" in registry.names()
    assert registry.validate("survey", {"title": "随访", "questions": 8}) == (
        {"title": "随访", "questions": 8},
        "【问卷】随访",
    )
    with pytest.raises(ProtocolError) as info:
        registry.validate("survey", {"title": "随访", "questions": "8"})
    assert info.value.field == "body.questions"
