// DOM for the customer 360. Every value from the API goes in as text (never as HTML).

export const CHANNELS = {
  wecom: "企业微信",
  tmall: "天猫",
  taobao: "淘宝",
  youzan: "有赞",
  pos: "门店",
  erp: "ERP",
  mdm: "会员主数据",
  douyin: "抖音",
  doudian: "抖店",
  wechat_mp: "公众号",
};
const IDENTIFIERS = {
  phone: "手机",
  email: "邮箱",
  member_no: "会员号",
  wecom_external_userid: "企业微信",
  wechat_unionid: "微信 UnionID",
  wechat_openid: "公众号 OpenID",
  taobao_open_uid: "淘宝",
  douyin_openid: "抖音",
  youzan_open_id: "有赞",
};
const ORDER_STATUS = {
  created: "待付款",
  pending: "待付款",
  paid: "已付款",
  shipped: "已发货",
  delivered: "已签收",
  completed: "已完成",
  closed: "已关闭",
  cancelled: "已取消",
  canceled: "已取消",
  refunding: "退款中",
  refunded: "已退款",
};
const INTERACTION_KINDS = {
  message: "消息",
  question: "咨询",
  comment: "评论",
  follow: "关注",
  subscribe: "关注公众号",
  unsubscribe: "取消关注",
  click: "点击菜单",
  scan: "扫码",
  like: "点赞",
  im: "私信",
  visit: "到店",
  add_external_contact: "添加企业微信",
};
const ATTRIBUTES = {
  gender: "性别",
  birthday: "生日",
  city: "城市",
  address: "地址",
  last_store: "最近门店",
  points: "积分",
  contract_no: "合同号",
  wecom_remark: "企微备注",
  email: "邮箱",
};
const MEMBER_LEVELS = {
  normal: "普通会员",
  silver: "银卡会员",
  gold: "金卡会员",
  platinum: "白金会员",
  diamond: "钻石会员",
  vip: "VIP",
};
const DATA_FIELDS = { channel: "渠道", channel_ref: "来源", store: "门店", campaign: "活动", score: "评分" };
const HIDDEN_ATTRIBUTES = new Set(["name", "member_level", "tags", "wecom_tags", "wecom_follow_user"]);
const TEXT_FIELDS = ["summary", "content", "text", "title", "question", "message"];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function channelBadge(source) {
  const key = String(source || "").toLowerCase();
  return el("span", { class: `badge ch-${key.replace(/[^a-z0-9_]/g, "") || "other"}`, "data-channel": key }, CHANNELS[key] || source || "其他");
}

export function money(amount, currency) {
  const value = Number(amount);
  if (amount === null || amount === undefined || amount === "" || !Number.isFinite(value)) return "";
  const text = value.toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const code = String(currency || "CNY").toUpperCase();
  return code === "CNY" || code === "RMB" ? `¥${text}` : `${code} ${text}`;
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso || "");
  const parts = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(date);
  const get = (type) => (parts.find((p) => p.type === type) || {}).value || "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}

function scalar(value) {
  return value !== null && value !== undefined && typeof value !== "object" && String(value) !== "";
}

export function header(customer) {
  const tags = (customer.tags || []).map((tag) => el("li", { class: "tag", text: tag }));
  const channels = (customer.channels || []).map((c) => el("li", {}, channelBadge(c)));
  return el(
    "header",
    { class: "card customer", "data-testid": "customer-header" },
    el(
      "div",
      { class: "title-row" },
      el("h1", { class: "name", "data-testid": "customer-name", text: customer.name || "未命名客户" }),
      customer.member_level
        ? el("span", {
            class: "tier",
            "data-testid": "member-level",
            "data-level": customer.member_level,
            text: MEMBER_LEVELS[String(customer.member_level).toLowerCase()] || customer.member_level,
          })
        : null,
    ),
    channels.length ? el("ul", { class: "channels", "data-testid": "channels", "aria-label": "已知渠道" }, channels) : null,
    tags.length ? el("ul", { class: "tags", "data-testid": "tags", "aria-label": "标签" }, tags) : null,
  );
}

export function identifiers(customer) {
  const rows = (customer.identifiers || []).map((id) =>
    el(
      "div",
      { class: "kv", "data-testid": "identifier", "data-type": id.type },
      el("dt", { text: IDENTIFIERS[id.type] || id.type }),
      el("dd", { class: "mono", text: id.value }),
    ),
  );
  const attributes = Object.entries(customer.attributes || {})
    .filter(([name, value]) => !HIDDEN_ATTRIBUTES.has(name) && scalar(value))
    .map(([name, value]) =>
      el("div", { class: "kv", "data-testid": "attribute" }, el("dt", { text: ATTRIBUTES[name] || name }), el("dd", { text: String(value) })),
    );
  if (!rows.length && !attributes.length) return null;
  return el(
    "section",
    { class: "card details" },
    el("h2", { text: "客户资料" }),
    customer.masked ? el("p", { class: "note", "data-testid": "masked-note", text: "部分信息已脱敏" }) : null,
    el("dl", {}, rows, attributes),
  );
}

export function archivedNotice(archived) {
  if (!archived || !Number(archived.count)) return null;
  return el("p", { class: "notice", "data-testid": "archived-orders", text: `另有 ${archived.count} 笔较早的订单已归档，未在时间线中显示` });
}

function orderItems(data) {
  const items = data.items || data.lines || [];
  if (!Array.isArray(items) || !items.length) return null;
  return el(
    "ul",
    { class: "items" },
    items.slice(0, 5).map((item) =>
      el("li", {}, String(item.name || item.title || item.sku || "商品"), item.quantity ? ` ×${item.quantity}` : ""),
    ),
    items.length > 5 ? el("li", { class: "more", text: `等 ${items.length} 件` }) : null,
  );
}

function orderEntry(entry) {
  const data = entry.data || {};
  const status = data.status ? ORDER_STATUS[String(data.status).toLowerCase()] || data.status : null;
  return el(
    "div",
    { class: "entry-body" },
    el(
      "div",
      { class: "entry-title" },
      el("span", { text: "订单" }),
      data.order_id ? el("span", { class: "mono dim", text: data.order_id }) : null,
      el("span", { class: "amount", "data-testid": "order-amount", text: money(data.amount ?? data.total, data.currency) }),
    ),
    status ? el("span", { class: "status", text: status }) : null,
    orderItems(data),
  );
}

function interactionEntry(entry) {
  const data = entry.data || {};
  const kind = data.kind ? INTERACTION_KINDS[String(data.kind).toLowerCase()] || data.kind : "互动";
  const textField = TEXT_FIELDS.find((name) => scalar(data[name]));
  const rest = Object.entries(data).filter(([name, value]) => name !== "kind" && name !== textField && scalar(value));
  return el(
    "div",
    { class: "entry-body" },
    el("div", { class: "entry-title" }, el("span", { text: kind })),
    textField ? el("p", { class: "text", text: String(data[textField]) }) : null,
    rest.length
      ? el(
          "dl",
          { class: "extra" },
          rest.slice(0, 4).map(([name, value]) => el("div", { class: "kv" }, el("dt", { text: DATA_FIELDS[name] || name }), el("dd", { text: String(value) }))),
        )
      : null,
  );
}

export function timelineEntry(entry) {
  const isOrder = entry.kind === "order";
  return el(
    "li",
    {
      class: `entry ${isOrder ? "order" : "interaction"}`,
      "data-testid": "timeline-entry",
      "data-kind": entry.kind,
      "data-source": entry.source,
      "data-event-id": entry.event_id,
    },
    el("div", { class: "entry-meta" }, channelBadge(entry.source), el("time", { datetime: entry.occurred_at, text: when(entry.occurred_at) })),
    isOrder ? orderEntry(entry) : interactionEntry(entry),
  );
}

export function stateView(state, title, detail, action = null) {
  return el(
    "section",
    { class: `state state-${state}`, "data-testid": `state-${state}` },
    el("p", { class: "state-title", text: title }),
    detail ? el("p", { class: "state-detail", text: detail }) : null,
    action ? el("button", { type: "button", class: "button", onclick: action.run, text: action.label }) : null,
  );
}
