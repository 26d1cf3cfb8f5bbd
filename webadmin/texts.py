"""What the web front door itself says to people, in Simplified Chinese, in one place (the app's own texts are in
clients/web)."""

from __future__ import annotations

NOT_BUILT = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>聊天应用尚未构建</title>
<p>聊天应用尚未构建。请在项目目录运行 <code>make web</code>（需要 Node 20 与 npm），然后刷新本页。</p></html>"""
