"""Staff edit pathways (EDU-1, EDU-2, EDU-3): each edit is the next version, checked like a shipped one,
and what cannot be done is refused in Chinese naming what is wrong. A version the install ships never overwrites a
staff edit that took its number, and a shipped version changed in place is refused."""

from __future__ import annotations

import msgspec
import pytest

from bots.pathway import texts
from bots.pathway.definition import PathwayError, shipped
from bots.pathway.manage import EditError, Where, add_text, remove_item, set_text, set_timing
from bots.pathway.store import PathwayStore

IVF = next(p for p in shipped() if p.key == "ivf")


def test_an_edit_is_the_next_version_and_leaves_the_last_one_alone() -> None:
    edited = set_text(IVF, Where("ivf", "filing", "flow"), "请夫妻双方带身份证到一楼服务台。")
    assert edited.version == IVF.version + 1
    assert edited.item("filing", "flow").text == "请夫妻双方带身份证到一楼服务台。"  # type: ignore[union-attr]
    assert IVF.item("filing", "flow").text.startswith("建档流程")  # type: ignore[union-attr]
    timed = set_timing(edited, Where("ivf", "trigger"), 2, "08:30")
    assert (timed.version, timed.node("trigger").before_days, timed.node("trigger").at) == (IVF.version + 2, 2, "08:30")


def test_added_items_get_the_first_free_key_and_can_be_removed() -> None:
    once = add_text(IVF, Where("ivf", "transfer"), "移植当天饮食", "移植当天清淡饮食即可。")
    twice = add_text(once, Where("ivf", "transfer"), "移植后作息", "规律作息。")
    assert [i.key for i in twice.node("transfer").content][-2:] == ["t1", "t2"]
    removed = remove_item(twice, Where("ivf", "transfer", "t1"))
    assert [i.key for i in removed.node("transfer").content][-1:] == ["t2"]
    assert removed.version == IVF.version + 3


@pytest.mark.parametrize(("edit", "said"), [
    (lambda: set_text(IVF, Where("iui", "filing", "flow"), "x"), texts.NO_PATHWAY.format(pathway="iui")),
    (lambda: set_text(IVF, Where("ivf", "nowhere", "flow"), "x"), texts.NO_NODE.format(pathway="试管婴儿",
                                                                                        node="nowhere")),
    (lambda: remove_item(IVF, Where("ivf", "filing", "nothing")), texts.NO_ITEM.format(node="建档", item="nothing")),
    (lambda: Where.parse("ivf.filing", item=True), texts.WHERE_ITEM),
    (lambda: Where.parse("ivf..x", item=True), texts.WHERE_ITEM),
    (lambda: Where.parse("ivf", item=False), texts.WHERE_NODE),
])
def test_what_cannot_be_done_is_refused_saying_what(edit: object, said: str) -> None:
    with pytest.raises(EditError) as refused:
        edit()  # type: ignore[operator]
    assert str(refused.value) == said


def test_an_edit_that_breaks_the_pathways_rules_is_refused() -> None:
    with pytest.raises(EditError, match="修改后的路径不符合规则"):
        set_text(IVF, Where("ivf", "filing", "flow"), "长" * 4001)
    with pytest.raises(EditError, match="修改后的路径不符合规则"):
        set_timing(IVF, Where("ivf", "trigger"), 1, "25:00")


async def test_a_shipped_version_never_overwrites_a_staff_edit(store: PathwayStore) -> None:
    staff = set_text(IVF, Where("ivf", "filing", "flow"), "医护修改的流程。")
    await store.publish(staff, by="u7")
    release = msgspec.structs.replace(IVF, version=IVF.version + 1, name="试管婴儿（新版）")
    await store.publish_shipped([release])  # logged and left out: the department's edit stands
    latest = await store.latest("ivf")
    assert latest == staff
    assert [(p.version, by) for p, by in await store.versions() if p.key == "ivf"] == [(IVF.version + 1, "u7")]
    with pytest.raises(PathwayError):  # a shipped version changed in place is a developer's mistake
        await store.publish_shipped([msgspec.structs.replace(IVF, name="改了但没升版本")])
