"""Real small media files for the browser tests, made by the browser itself: PNG and JPEG from a canvas, M4A voice
and MP4 video from MediaRecorder, a PDF from the print engine. So a card's image is decoded, its voice and video
play, and its PDF opens, with no media tools on the machine and no files kept in the repository."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from playwright.sync_api import Browser

MAKE = """async (seconds) => {
  const b64 = async (blob) => {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = "";
    for (const x of bytes) s += String.fromCharCode(x);
    return btoa(s);
  };
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = 240;
  document.body.append(canvas);
  const g = canvas.getContext("2d");
  const draw = (hue, label) => {
    g.fillStyle = `hsl(${hue} 55% 45%)`;
    g.fillRect(0, 0, 320, 240);
    g.fillStyle = "#fff";
    g.font = "bold 120px sans-serif";
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(label, 160, 125);
  };
  const still = (type) => new Promise((done) => canvas.toBlob(done, type, 0.85));
  const images = [];
  for (const [label, hue] of [["1", 210], ["2", 25], ["3", 140]]) {
    draw(hue, label);
    images.push(await b64(await still("image/png")));
  }
  draw(280, "V");
  const cover = await b64(await still("image/jpeg"));
  const record = (stream, mimeType) => new Promise((done) => {
    const recorder = new MediaRecorder(stream, { mimeType });
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = () => done(new Blob(chunks, { type: mimeType }));
    recorder.start();
    setTimeout(() => recorder.stop(), seconds * 1000);
  });
  const sound = new AudioContext();
  await sound.resume();
  const tone = sound.createOscillator();
  const out = sound.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  const voice = await b64(await record(out.stream, "audio/mp4"));
  tone.stop();
  let frame = 0;
  const ticking = setInterval(() => draw((frame += 12) % 360, String(frame % 10)), 40);
  const video = await b64(await record(canvas.captureStream(25), "video/mp4"));
  clearInterval(ticking);
  return { images, cover, voice, video };
}"""

REPORT = """<html><body style="font-family: sans-serif; padding: 40px">
<h1>生殖中心检验报告单</h1><p>患者：陈红　采集日期：2026-11-20</p>
<table border="1" cellpadding="6"><tr><th>项目</th><th>结果</th><th>参考范围</th></tr>
<tr><td>雌二醇 E2</td><td>2350 pg/mL ↑</td><td>25–345</td></tr>
<tr><td>孕酮 P</td><td>0.8 ng/mL</td><td>0.2–1.5</td></tr></table></body></html>"""


@dataclass(frozen=True)
class Media:
    pngs: list[bytes]
    """Three 320×240 PNGs showing 1, 2 and 3 in white on colour."""
    cover: bytes
    """A JPEG, a video's cover."""
    voice: bytes
    """``seconds`` of a tone as M4A (``audio/mp4``)."""
    video: bytes
    """``seconds`` of a changing canvas as MP4 (``video/mp4``)."""
    pdf: bytes
    """A one-page lab report."""
    seconds: int


def make_media(browser: Browser, seconds: int = 2) -> Media:
    """The files, recorded in a page of their own (recording takes ``seconds`` each for the voice and the video)."""
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.set_content("<body></body>")
        made = page.evaluate(MAKE, seconds)
        page.set_content(REPORT)
        pdf = page.pdf(format="A5")
    finally:
        context.close()
    return Media(pngs=[base64.b64decode(png) for png in made["images"]], cover=base64.b64decode(made["cover"]),
                 voice=base64.b64decode(made["voice"]), video=base64.b64decode(made["video"]), pdf=pdf,
                 seconds=seconds)
