"""The chat screen's behaviour a reader notices (issue 15): the jump pill to the first unread message, and the
font sizes for older patients. Screenshots are kept (test-artifacts/screens/)."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, expect

from clients.python import Client
from tests.system import Demo
from tests.web.conftest import as_user, logged_in, open_conv, scroll_to, shot

UNREAD = 40


def test_the_jump_pill_hides_under_a_sheet_and_goes_once_the_unread_divider_was_seen(
    system: Demo, browser: Browser
) -> None:
    """IM-19: 40 messages wait for zhao_min. Her chat opens at the end, the pill offering to jump up to the first
    of them; it does not show through the member list laid over the chat. She scrolls up by hand until the
    divider is in view: the pill goes, and stays gone when she scrolls back down."""
    name = f"未读测试群#{uuid.uuid4().hex[:6]}"

    async def fill(client: Client) -> None:
        conv = (await client.request("group_create", name=name, members=["zhao_min"]))["conv"]
        for n in range(1, UNREAD + 1):
            await client.send(conv, f"第{n}条：移植后第{n}天的注意事项")
    as_user(system, "dr_wang", fill)
    page = logged_in(browser, system, "zhao_min")
    open_conv(page, name)
    pill = page.get_by_test_id("jump-unread")
    expect(pill).to_have_text(f"{UNREAD}条新消息")

    page.get_by_test_id("open-members").click()
    expect(page.get_by_test_id("member-list")).to_be_visible()
    expect(pill).to_be_hidden()
    shot(page, "pill-under-sheet")
    page.locator(".van-overlay").click(position={"x": 20, "y": 400})
    expect(page.get_by_test_id("member-list")).to_be_hidden()
    expect(pill).to_be_visible()

    scroll_to(page, "unread-divider")
    expect(pill).to_be_hidden()
    page.get_by_test_id("message-list").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    page.wait_for_timeout(300)
    expect(pill).to_be_hidden()
    shot(page, "pill-gone")


def test_paging_back_keeps_the_message_being_read_where_it_is(system: Demo, browser: Browser) -> None:
    """IM-19: zhao_min reads up a long chat; as she nears the top of what is loaded, the page before it comes and
    goes above: the message she is reading stays exactly where it was on her screen (the rows are anchored on a
    message, not on the date separator that moves up to the new top)."""
    name = f"历史测试群#{uuid.uuid4().hex[:6]}"

    async def fill(client: Client) -> None:  # a bot: the higher rate limit
        conv = (await client.request("group_create", name=name, members=["zhao_min"]))["conv"]
        for n in range(1, 121):
            await client.send(conv, f"历史消息第{n}条")
    as_user(system, "ward", fill)
    page = logged_in(browser, system, "zhao_min")
    open_conv(page, name)
    chat = page.get_by_test_id("message-list")
    chat.evaluate("el => { el.scrollTop = 600; }")
    page.wait_for_timeout(300)
    height = chat.evaluate("el => el.scrollHeight")
    reading = page.evaluate("""() => {
      document.querySelector('[data-testid="message-list"]').scrollTop = 250;  // near the top: the page before
      const row = document.elementFromPoint(200, 420).closest('[data-testid^="msg-"]');
      return { id: row.dataset.testid, top: row.getBoundingClientRect().top };
    }""")
    page.wait_for_function("([el, h]) => el.scrollHeight > h", arg=[chat.element_handle(), height])
    page.wait_for_timeout(500)  # rows above measured, the view kept on the anchor meanwhile
    row = page.get_by_test_id(reading["id"])
    assert row.count() == 1, f"{reading['id']}, which she was reading, is no longer drawn: the view jumped"
    box = row.bounding_box()
    assert box is not None and abs(box["y"] - reading["top"]) <= 2, (reading, box)
    shot(page, "paged-back")


def test_the_font_sizes_scale_the_chat_without_clipping_it(system: Demo, browser: Browser) -> None:
    """Older patients pick 大 or 特大 in 设置: the root size (17, 19, 22 px) scales text and touch targets together;
    the chat with its cards still fits the phone's width, nothing runs off to the side."""
    page = logged_in(browser, system, "chen_hong")
    expect(page.get_by_test_id("conv-name").filter(has_text="pathway")).to_be_visible(timeout=60_000)
    for size, pixels in (("large", 19), ("xlarge", 22), ("standard", 17)):
        page.get_by_test_id("open-settings").click()
        page.get_by_test_id(f"font-{size}").click()
        assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == f"{pixels}px"
        page.get_by_text("返回").click()
        open_conv(page, "pathway")
        scroll_to(page, "form-open")
        page.wait_for_timeout(300)
        widths = page.get_by_test_id("message-list").evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert widths[0] <= widths[1], f"{size}: the chat is wider than the phone: {widths}"
        touch = page.get_by_test_id("composer-input").bounding_box()
        assert touch is not None and touch["height"] >= 44
        shot(page, f"chat-font-{size}")
        page.get_by_text("返回").click()
