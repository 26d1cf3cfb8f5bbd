"""Every message kind of SPEC.md §6.1 as its card on a patient's phone (issue 15; MSG-1, MSG-2, MSG-4, EDU-2): the
doctor sends chen_hong one message of each kind through the Python SDK, with real files the browser made
(tests/web/media.py), and one of a kind an admin defined; her phone shows each as its card, its files fetched and
decoded, its buttons doing what they say. A screenshot of each card is kept (test-artifacts/screens/card-*.png)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from clients.python import Client
from tests.system import Demo
from tests.web.conftest import as_user, logged_in, open_conv, shot, show_message
from tests.web.media import Media, make_media

SITE = "https://ivf.example.org"
"""Where the web pages of the cards point; the test answers for it (no network is needed)."""
CUSTOM = {"name": "pregnancy_check", "title": "验孕结果", "fallback": "【验孕】{result}，HCG {hcg}",
          "fields": [{"name": "result", "type": "choice", "label": "结果", "choices": ["阳性", "阴性"]},
                     {"name": "hcg", "type": "number", "label": "HCG"}]}


def send_one_of_each(system: Demo, media: Media) -> dict[str, int]:
    """What the doctor sends, by a name of the test's own: its seq in their direct chat."""
    async def define(client: Client) -> None:
        await client.request("kind_define", definition=CUSTOM)
    as_user(system, "admin", define)

    async def send(client: Client) -> dict[str, int]:
        pngs = [await client.upload(png, "image/png", f"B超{i}.png") for i, png in enumerate(media.pngs, 1)]
        voice = await client.upload(media.voice, "audio/mp4", "语音.m4a")
        video = await client.upload(media.video, "video/mp4", "移植后注意事项.mp4")
        cover = await client.upload(media.cover, "image/jpeg", "封面.jpg")
        pdf = await client.upload(media.pdf, "application/pdf", "激素六项报告.pdf")
        messages: list[tuple[str, str, dict[str, Any]]] = [
            ("treatment", "treatment_items", {"title": "取卵日安排", "day": "2026-11-20", "items": [
                {"name": "空腹抽血", "time": "07:30", "place": "门诊楼二楼检验科"},
                {"name": "取卵手术", "time": "08:30", "place": "生殖中心三楼手术室",
                 "note": "术前一晚22点后禁食禁水，穿宽松衣物，家属陪同"},
                {"name": "术后观察", "note": "观察两小时，无不适方可离院"}]}),
            ("lab", "lab_report", {"title": "性激素六项", "collected": "2026-11-18", "lab": "生殖中心检验科",
                                   "values": [
                {"name": "雌二醇 E2", "value": "2350", "unit": "pg/mL", "range": "25–345", "flag": "high"},
                {"name": "孕酮 P", "value": "0.8", "unit": "ng/mL", "range": "0.2–1.5"},
                {"name": "促黄体生成素 LH", "value": "0.6", "unit": "mIU/mL", "range": "1.2–12.9", "flag": "low"}]}),
            ("lab_images", "lab_report_images", {"title": "B超报告单", "images": pngs[:2]}),
            ("lab_pdf", "lab_report_pdf", {"title": "激素六项报告", "pdf": pdf}),
            ("followup", "followup", {"title": "移植后14天验孕随访",
                                      "content": "请于移植后第14天到门诊抽血查HCG，并填写随访表。", "due": "2026-12-04",
                                      "form": {"label": "填写随访表", "target": "mp://pages/followup/form?id=7"}}),
            ("notice_app", "notice", {"title": "门诊停诊通知", "content": "12月1日上午门诊停诊，下午照常。",
                                      "action": {"label": "在App中预约", "target": "app://booking/today"}}),
            ("notice_mp", "notice", {"title": "缴费提醒", "content": "冷冻胚胎保存费将于下月到期。",
                                     "action": {"label": "去小程序缴费", "target": "mp://pages/pay/index"}}),
            ("notice_web", "notice", {"title": "医院公告", "content": "生殖中心搬迁至新院区三楼。",
                                      "action": {"label": "查看新院区地图", "target": f"{SITE}/notices/42"}}),
            ("article", "article", {"title": "移植后的饮食与休息", "url": f"{SITE}/articles/7",
                                    "summary": "移植后不必绝对卧床，正常饮食，避免剧烈运动。"}),
            ("images", "image_group", {"images": pngs, "caption": "今天的B超图"}),
            ("voice", "voice", {"audio": voice, "seconds": media.seconds}),
            ("video", "video", {"video": video, "seconds": media.seconds, "cover": cover}),
            ("location", "location", {"name": "生殖中心（新院区）", "lat": 30.2741, "lon": 120.1551,
                                      "address": "浙江省杭州市上城区解放路88号 门诊楼三楼"}),
            ("file", "file", {"title": "移植后用药说明", "file": pdf, "note": "请按说明用药，有疑问随时咨询。"}),
            ("custom", CUSTOM["name"], {"result": "阳性", "hcg": 356.5}),
        ]
        conv, seqs = "u:chen_hong", {}
        for name, kind, body in messages:
            answer = await client.send(conv, kind=kind, body=body)
            conv, seqs[name] = answer.conv, answer.seq
        return seqs
    return as_user(system, "dr_wang", send)


def card(page: Page, seqs: dict[str, int], name: str) -> Locator:
    """The message ``name`` brought into view, its screenshot kept as ``card-<name>``."""
    row = show_message(page, seqs[name])
    page.wait_for_timeout(200)  # the list settles after measuring the row
    shot(page, f"card-{name}", row)
    return row


def test_every_kind_shows_as_its_card(system: Demo, browser: Browser) -> None:
    """MSG-1, MSG-2, MSG-4: each of the 13 template kinds, files and a custom kind as the patient sees them."""
    seqs = send_one_of_each(system, make_media(browser))
    page = logged_in(browser, system, "chen_hong")
    page.context.route(f"{SITE}/**", lambda route: route.fulfill(body="<h1>页面</h1>", content_type="text/html"))
    page.context.route("https://uri.amap.com/**", lambda route: route.fulfill(body="<h1>地图</h1>",
                                                                               content_type="text/html"))
    open_conv(page, "王医生")

    custom = card(page, seqs, "custom")  # a kind this app does not know: its fallback text
    expect(custom.get_by_test_id("bubble")).to_have_text("【验孕】阳性，HCG 356.5")

    file = card(page, seqs, "file")
    expect(file.get_by_test_id("file-card")).to_contain_text("移植后用药说明")
    expect(file.get_by_test_id("file-card")).to_contain_text("激素六项报告.pdf")
    expect(file.get_by_test_id("file-card")).to_contain_text("请按说明用药")
    with page.context.expect_page() as opened:
        file.get_by_test_id("file-card").click()
    assert opened.value.url.startswith("blob:")  # the PDF, fetched through the protocol
    opened.value.close()

    location = card(page, seqs, "location")
    expect(location).to_contain_text("生殖中心（新院区）")
    expect(location).to_contain_text("解放路88号")
    with page.context.expect_page() as opened:
        location.get_by_test_id("location-card").click()
    assert "position=120.1551,30.2741" in opened.value.url
    opened.value.close()

    video = card(page, seqs, "video")
    expect(video.get_by_test_id("video-play")).to_contain_text("2秒")
    expect(video.locator("img")).to_have_js_property("complete", True)  # the cover
    video.get_by_test_id("video-play").click()
    player = video.locator("video")
    expect(player).to_be_visible(timeout=30_000)
    page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=player.element_handle(), timeout=30_000)

    voice = card(page, seqs, "voice")
    expect(voice.get_by_test_id("voice-play")).to_contain_text("2″")
    voice.get_by_test_id("voice-play").click()
    expect(voice.get_by_test_id("voice-play")).to_have_class("voice playing", timeout=30_000)

    images = card(page, seqs, "images")
    expect(images.get_by_test_id("image-grid").locator("img")).to_have_count(3)
    expect(images).to_contain_text("今天的B超图")
    for img in images.get_by_test_id("image-grid").locator("img").all():
        page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=img.element_handle())
    images.get_by_test_id("image-grid").locator("button").nth(1).click()
    preview = page.locator(".van-image-preview")
    expect(preview).to_be_visible()
    expect(preview.locator(".van-image-preview__index")).to_have_text("2 / 3")
    page.wait_for_timeout(500)  # it zooms in
    shot(page, "card-images-preview")
    preview.locator(".van-image-preview__close-icon").click()
    expect(preview).to_be_hidden()

    article = card(page, seqs, "article")
    expect(article).to_contain_text("移植后的饮食与休息")
    expect(article).to_contain_text("不必绝对卧床")
    with page.context.expect_page() as opened:
        article.get_by_test_id("article-card").click()
    assert opened.value.url == f"{SITE}/articles/7"
    opened.value.close()

    web = card(page, seqs, "notice_web")
    expect(web).to_contain_text("生殖中心搬迁至新院区三楼")
    with page.context.expect_page() as opened:
        web.get_by_test_id("card-action").click()
    assert opened.value.url == f"{SITE}/notices/42"
    opened.value.close()
    for name, label, said in (("notice_mp", "去小程序缴费", "请在微信小程序中打开此页面"),
                              ("notice_app", "在App中预约", "请在医院App中打开此页面")):
        notice = card(page, seqs, name)
        expect(notice.get_by_test_id("card-action")).to_have_text(label)
        notice.get_by_test_id("card-action").click()
        toast = page.locator(".van-toast").filter(has_text=said)
        expect(toast).to_be_visible()
        expect(toast).to_be_hidden()  # gone by itself, before the next card's screenshot

    followup = card(page, seqs, "followup")
    expect(followup).to_contain_text("移植后14天验孕随访")
    expect(followup).to_contain_text("2026-12-04")
    expect(followup.get_by_test_id("card-action")).to_have_text("填写随访表")

    pdf = card(page, seqs, "lab_pdf")
    expect(pdf.get_by_test_id("file-card")).to_contain_text("激素六项报告")
    expect(pdf.get_by_test_id("file-card")).to_contain_text("查看PDF")

    lab_images = card(page, seqs, "lab_images")
    expect(lab_images).to_contain_text("B超报告单")
    expect(lab_images.get_by_test_id("image-grid").locator("img")).to_have_count(2)

    lab = card(page, seqs, "lab")
    expect(lab).to_contain_text("性激素六项")
    expect(lab).to_contain_text("2026-11-18")
    high = lab.get_by_test_id("lab-value").filter(has_text="雌二醇 E2")
    expect(high).to_contain_text("2350")
    expect(high).to_contain_text("↑")
    expect(lab.get_by_test_id("lab-value").filter(has_text="促黄体生成素 LH")).to_contain_text("↓")

    treatment = card(page, seqs, "treatment")
    expect(treatment).to_contain_text("取卵日安排")
    expect(treatment).to_contain_text("2026-11-20")
    expect(treatment.get_by_test_id("treatment-item")).to_have_count(3)
    expect(treatment.get_by_test_id("treatment-item").nth(1)).to_contain_text("08:30")
    expect(treatment.get_by_test_id("treatment-item").nth(1)).to_contain_text("生殖中心三楼手术室")
