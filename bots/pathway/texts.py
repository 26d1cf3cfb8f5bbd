"""Everything the pathway bot says to patients and staff, in Simplified Chinese, in one place to review."""

CENTER = "省妇幼生殖中心"

PROGRESS_NONE = "您目前没有进行中的治疗周期。如有疑问，请联系您的主管护士。"
PROGRESS_AT = "您目前处于「{pathway}」的「{node}」阶段。"
PROGRESS_BEFORE = "您的「{pathway}」周期已建立，即将开始「{node}」阶段。"
NEXT_DATED = "下一步：{node}，日期 {day}。"
NEXT_UNDATED = "下一步：{node}，具体日期由医生确定后会第一时间通知您。"
PREPARE = "需要准备：{prepare}"
ALL_DONE = "本周期的各阶段已全部完成，祝您一切顺利！"

ITEM_TEXT = "【{title}】\n{text}"
OFFSET_DAY = "{name}（{month}月{day}日）"
TREATMENT_SHORT = "【{center}】{title}提醒：{day} {items}。详情请查看App消息。"

REMIND_READ = "温馨提醒：「{title}」您还没有查看，请抽空阅读。"
REMIND_FORM = "温馨提醒：请填写「{title}」。"
REMIND_SIGN = "温馨提醒：请签署「{title}」。"

FORM_THANKS = "已收到您填写的「{title}」，谢谢！"
FORM_FIX = "「{title}」填写有误：{problem}。请修改后重新提交。"
FORM_UNKNOWN = "没有找到您要提交的表单，请在最新的表单消息中填写。"
SIGNED = "已收到您的签名（{time}），谢谢！"

SUMMARY_TITLE = "宣教日报 {day}"
SUMMARY_LINE = "{pathway}·{node}：发送 {sent}，已读 {read}，完成 {completed}，提醒 {reminded}"
SUMMARY_EMPTY = "今日无宣教发送。"

ENROLLED = "已为 {patient} 建立「{pathway}」周期（{day}）。"
DATED = "已记录 {patient} 的{procedure}日期：{day}。"
REFUSED = "未能处理：{error}"
PROCEDURE_NAMES = {
    "trigger": "夜针", "retrieval": "取卵", "fresh_transfer": "鲜胚移植", "frozen_transfer": "冻胚移植",
    "insemination": "人工授精",
}

TITLE = "宣教助手"
DESCRIPTION = "治疗路径宣教：按治疗节点提前推送就诊流程与注意事项，按手术日期发送治疗事项"
PROGRESS_HELP = "查看我目前所处的治疗阶段、下一步及需要准备的事项"
ENROLL_HELP = "为患者建立治疗周期（如医院系统未同步时使用）"
DATE_HELP = "记录患者的手术日期"
STATUS_HELP = "查看某位患者的治疗阶段"
PATIENT = "患者的用户名"
PATHWAY = "路径：ivf（试管婴儿）或 iui（人工授精）"
PROCEDURE = ("手术：trigger 夜针、retrieval 取卵、fresh_transfer 鲜胚移植、frozen_transfer 冻胚移植、"
             "insemination 人工授精")
DAY = "日期，如 2026-12-14"
BAD_DAY = "日期格式应为 YYYY-MM-DD，例如 2026-12-14。"
