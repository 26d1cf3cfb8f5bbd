/**
 * Every sentence the app shows a person, in Simplified Chinese, in one place (STYLE: user-facing text in one
 * place per component), so that the center's staff can review the wording in one file. Functions take the
 * parts that vary. Texts the server sends (error `message`s, fallback texts, names) are shown as they come.
 */

export const T = {
  appTitle: "生殖中心 · 医患沟通",

  // login
  loginTitle: "登录",
  loginSubtitle: "生殖中心患者与医护沟通平台",
  username: "用户名",
  usernamePlaceholder: "请输入用户名",
  password: "密码",
  passwordPlaceholder: "请输入密码",
  loginButton: "登录",
  loggingIn: "正在登录…",
  usernameRequired: "请输入用户名",
  passwordRequired: "请输入密码",
  configFailed: "无法读取服务器配置，请检查网络后刷新页面",
  loginFailed: "登录失败，请稍后再试",
  sessionEnded: "登录已失效，请重新登录",

  // connection
  offline: "网络已断开，正在重新连接…",
  connecting: "正在连接…",

  // conversation list
  chats: "消息",
  services: "服务号",
  noChats: "暂无会话",
  pinned: "置顶",
  groupTag: "群聊",
  serviceTag: "服务号",
  bannedTag: "已封禁",
  mutedTag: "禁言中",
  settings: "设置",
  friendRequests: "好友申请",
  noPreview: "",
  draftFailed: "[发送失败]",

  // settings
  fontSize: "字体大小",
  fontSizes: { standard: "标准", large: "大", xlarge: "特大" } as Record<"standard" | "large" | "xlarge", string>,
  fontSample: "这是一段示例文字：移植后请注意休息，按时用药。",
  account: "当前账号",
  logout: "退出登录",
  logoutConfirm: "确定退出登录吗？",
  viewModeNote: "当前为只读查看模式，不能发送消息",

  // chat
  back: "返回",
  members: "群成员",
  loadingHistory: "正在加载更早的消息…",
  noMoreHistory: "没有更早的消息了",
  newMessagesAbove: (n: number) => `${n > 99 ? "99+" : n}条新消息`,
  newMessagesBelow: "有新消息",
  unreadDivider: "以下为新消息",
  today: "今天",
  yesterday: "昨天",
  onlyFor: (name: string) => `仅${name}可见`,
  onlyTag: "仅TA可见",
  refused: "已拦截（含敏感词，仅医护可见）",
  sending: "发送中",
  failed: "发送失败",
  retry: "重新发送",
  discard: "删除",
  edit: "重新编辑",
  me: "我",

  // composer and group states
  inputPlaceholder: "输入消息",
  send: "发送",
  mutedNotice: "全员禁言中，暂时不能发言",
  mutedStaffNotice: "全员禁言中（医护仍可发言）",
  familyReadOnly: "家属仅可查看，不能在本群发言",
  bannedTitle: "该群已被封禁",
  bannedText: "群内消息暂时无法查看和发送。",
  readOnlySession: "只读模式：可以查看消息，不能发送",
  emoji: "表情",
  more: "更多",
  image: "图片",
  file: "文件",
  voice: "语音",
  mention: "@提醒",
  onlyMode: "仅TA可见",
  onlyPick: "选择仅对谁可见",
  onlyTarget: (name: string) => `仅${name}可见`,
  cancel: "取消",
  confirm: "确定",
  close: "关闭",
  recordStart: "按住说话",
  recording: (s: number) => `正在录音 ${s}秒，松开发送`,
  recordUnsupported: "当前浏览器不支持录音",
  recordDenied: "无法使用麦克风，请在浏览器设置中允许",
  recordTooShort: "说话时间太短",
  uploading: "正在上传…",
  uploadFailed: "上传失败",
  fileTooLarge: (mb: number) => `文件过大，此类文件最大 ${mb} MB`,
  fileTypeUnsupported: "不支持的文件类型",

  // quick replies and commands
  quickReplies: "常用回复",
  quickSearch: "搜索常用回复",
  noQuickReplies: "没有匹配的常用回复",
  botCommands: "机器人命令",
  fillPrompts: "请填写",
  fillRequired: (name: string) => `请填写${name}`,
  patientFor: "发送给哪位患者",
  withAttachment: "含附件",

  // members and people
  memberCount: (n: number) => `群成员（${n}）`,
  openChat: "发消息",
  showIdentity: "查看真实身份",
  identityConfirm: "查看患者真实身份会被记录在审计日志中，确定查看吗？",
  identityTitle: "真实身份",
  phone: "手机号",
  familyMembers: "家属",
  noPhone: "未登记",
  addFriend: "加为好友",
  friendSent: "好友申请已发送",
  isolate: "隔离该成员",
  unisolate: "解除隔离",
  isolated: "已隔离：其消息仅本人和群管理员可见",
  unisolated: "已解除隔离",
  roleStaff: "医护",
  roleBot: "服务号",
  roleFamily: "家属",
  rolePatient: "患者",
  owner: "群主",
  admin: "管理员",

  // friends
  friendRequestFrom: (name: string) => `${name} 请求加您为好友`,
  friendRequestIn: (group: string) => `来自群聊「${group}」`,
  accept: "接受",
  decline: "拒绝",
  noFriendRequests: "暂无好友申请",
  friendAccepted: "已成为好友",

  // cards
  open: "查看",
  openInApp: "请在医院App中打开此页面",
  openInMiniProgram: "请在微信小程序中打开此页面",
  location: "位置",
  openMap: "查看地图",
  article: "文章",
  readArticle: "阅读全文",
  labReport: "检验报告",
  labCollected: (day: string) => `采集日期：${day}`,
  labName: "项目",
  labValue: "结果",
  labRange: "参考范围",
  flagHigh: "↑",
  flagLow: "↓",
  flagAbnormal: "*",
  viewPdf: "查看PDF",
  images: (n: number) => `${n}张图片`,
  treatment: "治疗项目",
  followup: "随访",
  due: (day: string) => `截止：${day}`,
  notice: "通知",
  voiceSeconds: (s: number) => `${s}″`,
  videoSeconds: (s: number) => `视频 ${s}秒`,
  playVideo: "播放视频",
  loadFailed: "加载失败，点击重试",
  loading: "加载中…",
  fileCard: "文件",
  download: "下载",

  // forms and signatures (EDU-2)
  form: "表单",
  fillForm: "填写表单",
  refillForm: "修改填写",
  formDone: "已填写",
  formSubmit: "提交",
  formReply: "已填写表单",
  required: "必填",
  fieldRequired: (label: string) => `请填写${label}`,
  fieldInt: (label: string) => `${label}应为整数`,
  fieldNumber: (label: string) => `${label}应为数字`,
  fieldTooLong: (label: string, n: number) => `${label}最多${n}个字`,
  fieldUrl: (label: string) => `${label}应以 http:// 或 https:// 开头`,
  fieldDate: (label: string) => `${label}应为有效日期，按“年-月-日”填写，如 2026-11-20`,
  fieldTime: (label: string) => `${label}应按“时:分”填写，如 08:30`,
  datePlaceholder: "年-月-日，如 2026-11-20",
  timePlaceholder: "时:分，如 08:30",
  fieldChoice: (label: string) => `请选择${label}`,
  yes: "是",
  no: "否",
  signatureRequest: "电子签名",
  sign: "签署",
  signDone: "已签署",
  signTitle: "请在下方框内签名",
  signClear: "重写",
  signConfirm: "确认签署",
  signEmpty: "请先签名",
  signatureSigned: "已签署",
  attachmentField: "选择文件",

  // errors
  notMember: "您已不在此会话中",
  readOnlyRefused: "只读模式下不能进行此操作",
  genericError: "操作失败，请稍后再试",
  viewTokenMissing: "查看链接无效或已过期，请从小程序重新打开",
};

/** A person's role as a short tag after the name (staff show their title instead, when they have one). */
export function roleTag(role: string): string {
  switch (role) {
    case "staff":
    case "admin":
      return T.roleStaff;
    case "bot":
      return T.roleBot;
    case "family":
      return T.roleFamily;
    default:
      return "";
  }
}

/** The emoji offered by the composer's emoji panel. */
export const EMOJI = ("😀 😁 😂 🙂 😊 😍 🥰 😘 😉 😎 🤔 😮 😢 😭 😤 😡 👍 👎 👏 🙏 💪 🤝 👌 ✌️ 🌹 🌸 🎉 ❤️ 💗 ☀️ 🌙 ⭐ 🍎 🍵 🏥 💊 🩺 👶 🍼").split(" ");
