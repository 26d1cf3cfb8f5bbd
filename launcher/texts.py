"""Everything the launcher says to the person who started it, in Simplified Chinese, in one place."""

from __future__ import annotations

NO_DATABASE = "未配置 DATABASE_URL：在 {data} 启动内置 PostgreSQL …"
BANNER = """
手机网页版（患者、家属、医护）：{web}  患者 chen_hong，丈夫 chen_family，医生 dr_wang
聊天服务已启动：{url}
健康检查与指标：{http}/healthz  /metrics
演示账号（密码均为 {password}）：{accounts}
演示群：{group}（{group_name}）
机器人（已在演示群中，也可私聊，发送 /help）：{bots}
外部系统模拟器（收到的通知见 /_sim/received）：微信 {wechat}  短信 {sms}  电话 {phone}  医院系统 {his}
宣教助手：模拟医院系统已为 chen_hong 建立试管婴儿周期，她会在与 pathway 的私聊中收到建档宣教
试一试：{try_it}
小程序只读视图：{view_it}，再在浏览器打开 {web} 加上返回的 path
按 Ctrl-C 停止。
"""
ACCOUNT = "{username}（{name}）"
STOPPED = "演示已停止。"
FAILED = "演示无法启动：{error}"
