"""Everything the pathway bot says to patients and staff, in Simplified Chinese, in one place to review."""

CENTER = "省妇幼生殖中心"

PROGRESS_NONE = "您目前没有进行中的治疗周期。如有疑问，请联系您的主管护士。"
PROGRESS_AT = "您目前处于「{pathway}」的「{node}」阶段。"
PROGRESS_BEFORE = "您的「{pathway}」周期已建立，即将开始「{node}」阶段。"
NEXT_DATED = "下一步：{node}，日期 {day}。"
NEXT_UNDATED = "下一步：{node}，具体日期由医生确定后会第一时间通知您。"
PREPARE = "需要准备：{prepare}"
TO_DO = "待您完成：{items}（在与宣教助手的对话中填写或签署）。"
ALL_DONE = "本周期的各阶段已全部完成，祝您一切顺利！"

ITEM_TEXT = "【{title}】\n{text}"
OFFSET_DAY = "{name}（{month}月{day}日）"
TREATMENT_NOTE_TITLE = "{center}{title}提醒"
TREATMENT_NOTE = "{items}。详情请查看App消息。"
SHORT_DAY = "{month}月{day}日"

REMIND_READ = "温馨提醒：「{title}」您还没有查看，请抽空阅读。"
REMIND_FORM = "温馨提醒：请填写「{title}」。"
REMIND_SIGN = "温馨提醒：请签署「{title}」。"

FORM_THANKS = "已收到您填写的「{title}」，谢谢！"
FORM_CORRECTED = "已按您新提交的内容更新「{title}」，谢谢！"
FORM_FIX = "「{title}」填写有误：{problem}。请修改后重新提交。"
FIELD_WRONG = "「{label}」填写不正确"
FORM_WRONG = "内容不完整或格式不正确"
FORM_UNKNOWN = "没有找到您要提交的表单，请在最新的表单消息中填写。"
SIGNED = "已收到您对「{title}」的签名（{time}），谢谢！"
SIGNED_BEFORE = "您已于 {time} 签署「{title}」，以首次签名为准。如需更改，请联系您的主管护士。"

SUMMARY_TITLE = "宣教日报 {day}"
SUMMARY_LINE = "{node}：发送 {sent}，已读 {read}，完成 {completed}，提醒 {reminded}"
SUMMARY_ORDERS = "{pathway}·医嘱宣教"

TAGGED = "已为 {patient} 添加标签「{tag}」。"
TAGGED_BEFORE = "{patient} 已有标签「{tag}」。"
UNTAGGED = "已去掉 {patient} 的标签「{tag}」。"
NOT_TAGGED = "{patient} 没有标签「{tag}」。"
CLASS_IN_GROUP = "请在课堂群里发送此命令（先建群，并把宣教助手设为群管理员）。"
CLASS_EMPTY = "没有带标签「{tag}」的患者。"
CLASS_NO_CONTENT = "没有找到课堂内容「{content}」，格式如 ivf.transfer（路径.节点）。"
CLASS_NOT_ADMIN = "宣教助手不是本群管理员，无法拉患者入群。请先把宣教助手设为管理员。"
CLASS_READY = "课堂已准备好：发布内容 {items} 条，已拉入标签「{tag}」的患者 {patients} 位（家属只读随入）。"
DAILY_ON = "好的，每天 {at} 会在这里发送前一天的宣教日报。"
DAILY_OFF = "已停止在这里发送宣教日报。"

WHERE_NODE = "位置格式为 路径.节点，如 ivf.filing（/pathway ivf 可查看节点）。"
WHERE_ITEM = "位置格式为 路径.节点.条目，如 ivf.filing.flow（/pathway ivf filing 可查看条目）。"
NO_PATHWAY = "没有路径「{pathway}」。/pathways 可查看全部路径。"
NO_NODE = "「{pathway}」没有节点「{node}」。"
NO_ITEM = "节点「{node}」没有条目「{item}」。"
EDIT_INVALID = "修改后的路径不符合规则：{problem}"
EDIT_RACE = "刚刚有其他同事修改了这条路径，请查看最新版本后重试。"
EDITED = "已发布「{pathway}」第{version}版。新建周期使用新版本；进行中的周期仍按原版本，已发送的内容不变。"
ADDED = "已在「{node}」末尾添加条目 {item}，并发布「{pathway}」第{version}版。"
BAD_TIME = "时间格式应为 HH:MM，例如 09:00。"
PATHWAY_LINE = "{name}（{key}）第{version}版{by}：{nodes}"
BY_STAFF = "（医护修改）"
BY_RELEASE = "（系统发布）"
NODE_HEAD = "{pathway}·{node}（{key}）：{step}{after}，提前{before}天 {at} 推送；群：{group}"
NODE_STEP = {"enroll": "建档当天", "trigger": "夜针日", "retrieval": "取卵日", "transfer": "移植日",
             "insemination": "人授日"}
NODE_AFTER = "后第{days}天"
ITEM_LINE = "· {key}  {kind}「{title}」"
KIND_NAMES = {"text": "文本", "link": "链接", "image": "图片", "video": "视频", "form": "表单",
              "signature": "电子签名"}
NODE_LIST = "{pathway}（{key}）第{version}版的节点：{nodes}\n查看节点内容：/pathway {key} 节点"

CANCELLED_UNANNOUNCED = "您的{procedure}安排已取消。后续安排医生会再通知您，如有疑问请联系您的主管护士。"
CANCELLED_TITLE = "{center}{procedure}安排取消"
CANCELLED = ("您的{procedure}安排已取消，之前发送的{procedure}事项不再适用。"
             "后续安排医生会再通知您，如有疑问请联系您的主管护士。")

ENROLLED = "已为 {patient} 建立「{pathway}」周期（{day}）。"
CANCEL_DONE = "已取消 {patient} 的{procedure}安排，并已通知患者。"
DATED = "已记录 {patient} 的{procedure}日期：{day}。"
REFUSED = {
    "malformed": "未能处理：患者用户名或日期不正确，请检查后重试。",
    "no_pathway": "未能处理：该治疗路径尚未发布，请联系信息科。",
    "no_cycle": "未能处理：{patient} 没有进行中的治疗周期，请先用 /enroll 建立周期。",
    "no_procedure": "未能处理：{patient} 当前的治疗路径没有这项手术。",
    "not_dated": "未能处理：{patient} 这项手术还没有日期，无需取消。",
}
WAITING = ("已收到，但 {patient} 之前的一条医院系统消息处理失败，本条将排在其后自动处理。"
           "如长时间未生效，请联系信息科。")
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
CANCEL_HELP = "取消患者已排定的手术（如全胚冷冻取消鲜胚移植），并通知患者"
PATHWAYS_HELP = "查看全部宣教路径及其当前版本"
PATHWAY_HELP = "查看某条路径的节点，或某个节点的内容条目"
EDIT_HELP = "修改某个条目的文字（发布新版本）"
TIMING_HELP = "修改节点内容的推送时间：提前几天、几点（发布新版本）"
ADDITEM_HELP = "在节点末尾添加一条文字宣教（发布新版本）"
DELITEM_HELP = "删除节点中的一个条目（发布新版本）"
PATHWAY_KEY = "路径：ivf 或 iui"
NODE_KEY = "节点，如 filing（可不填）"
WHERE_ITEM_HELP = "条目位置：路径.节点.条目，如 ivf.filing.flow"
WHERE_NODE_HELP = "节点位置：路径.节点，如 ivf.trigger"
NEW_TEXT = "新的文字内容"
BEFORE_DAYS = "提前天数（0–30）"
AT_TIME = "推送时间，如 09:00"
ITEM_TITLE = "条目标题"
TAG_HELP = "给患者添加分类标签（用于课堂和统计）"
UNTAG_HELP = "去掉患者的分类标签"
CLASSROOM_HELP = "在本群开课堂：先发布内容，再拉入带该标签的患者（家属只读）"
DAILY_HELP = "在本会话每天接收宣教日报（on 开启，off 关闭）"
TAG = "标签，如 移植待产"
CLASS_CONTENT = "课堂内容：路径.节点，如 ivf.transfer（可不填）"
DAILY_SWITCH = "on 或 off"
PATIENT = "患者的用户名"
PATHWAY = "路径：ivf（试管婴儿）或 iui（人工授精）"
PROCEDURE = ("手术：trigger 夜针、retrieval 取卵、fresh_transfer 鲜胚移植、frozen_transfer 冻胚移植、"
             "insemination 人工授精")
DAY = "日期，如 2026-12-14"
BAD_DAY = "日期格式应为 YYYY-MM-DD，例如 2026-12-14。"
