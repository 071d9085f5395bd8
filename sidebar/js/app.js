// The customer 360 in the WeCom sidebar: sign in (OAuth code -> session), register the JS-SDK,
// learn the external contact of this chat, show its profile and one timeline across channels.

import { Api, ApiError } from "./api.js";
import { loadConfig } from "./config.js";
import { ALLOWED_ENTRIES, currentEntry, currentExternalContact, loadSdk, register, WeComError } from "./wecom.js";
import { archivedNotice, el, header, identifiers, stateView, timelineEntry } from "./render.js";
import * as session from "./session.js";

const root = document.getElementById("app");

function show(state, ...children) {
  root.dataset.state = state;
  root.replaceChildren(...children.filter(Boolean));
}

function showState(state, title, detail = null, action = null) {
  show(state, stateView(state, title, detail, action));
}

const retry = { label: "重试", run: () => window.location.reload() };

class Sidebar {
  constructor(config, api) {
    this.config = config;
    this.api = api;
    this.externalUserId = null;
    this.cursor = null;
    this.loadingMore = false;
    this.list = null;
    this.more = null;
    this.observer = null;
  }

  // 401 anywhere: the session ended; sign in again once, then give up with a clear message.
  sessionEnded() {
    if (!session.redirectToOAuth(this.config, { again: true })) {
      showState("error", "登录已失效", "请关闭侧边栏后重新打开", retry);
    }
  }

  async start() {
    const callback = session.oauthCallback();
    let saved = session.storedToken();
    if (!saved && callback) {
      if (!callback.stateOk) {
        showState("error", "登录校验失败", "请重新打开侧边栏", retry);
        return;
      }
      try {
        saved = await this.api.session(callback.code);
        session.keepToken(saved);
      } catch (error) {
        if (error.status === 401) return this.sessionEnded();
        if (error.status === 403) return showState("error", "无法登录", "您不是本企业的成员");
        return showState("error", "登录失败", error.message, retry);
      }
    }
    if (!saved) {
      session.redirectToOAuth(this.config);
      return;
    }
    this.api.token = saved.token;

    let wx;
    try {
      const signed = await this.api.jsapiConfig(window.location.href.split("#")[0]);
      wx = await loadSdk(this.config.sdkScripts);
      await register(wx, signed);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return this.sessionEnded();
      return showState("error", "企业微信授权失败", error.message, retry);
    }

    try {
      const entry = await currentEntry(wx);
      if (!ALLOWED_ENTRIES.includes(entry)) {
        return showState("wrong-entry", "请从客户聊天工具栏或客户详情打开", `当前入口：${entry || "未知"}`);
      }
      this.externalUserId = await currentExternalContact(wx);
    } catch (error) {
      const detail = error instanceof WeComError ? error.message : String(error);
      return showState("error", "无法获取当前客户", detail, retry);
    }
    await this.loadFirstPage();
  }

  async loadFirstPage() {
    show("loading", stateView("loading", "加载中…"));
    let customer;
    try {
      customer = await this.api.customer(this.externalUserId);
    } catch (error) {
      return this.failed(error);
    }
    session.signedIn();
    this.render(customer);
  }

  failed(error) {
    if (error.status === 401) return this.sessionEnded();
    if (error.status === 403 && error.code === "not_your_customer") {
      return showState("not-your-customer", "不是您的客户", "您没有跟进这位客户，无法查看其资料");
    }
    if (error.status === 404 && error.code === "unknown_customer") {
      return showState("empty", "暂无该客户的资料", "客户的订单、会员和互动同步后会显示在这里");
    }
    return showState("error", "加载失败", error.message, { label: "重试", run: () => this.loadFirstPage() });
  }

  render(customer) {
    this.list = el("ol", { class: "timeline", "data-testid": "timeline" });
    this.more = el("div", { class: "more" });
    const timeline = el(
      "section",
      { class: "card" },
      el("h2", { text: "客户动态" }),
      archivedNotice(customer.archived_orders),
      this.list,
      this.more,
    );
    show("ready", header(customer), identifiers(customer), timeline);
    this.append(customer);
  }

  append(page) {
    for (const entry of page.timeline || []) this.list.append(timelineEntry(entry));
    this.cursor = page.next_cursor || null;
    if (this.observer) this.observer.disconnect();
    if (!this.cursor) {
      this.more.replaceChildren(
        this.list.children.length ? el("p", { class: "end", text: "没有更多了" }) : el("p", { class: "end", "data-testid": "timeline-empty", text: "暂无订单和互动" }),
      );
      return;
    }
    const button = el("button", { type: "button", class: "button", "data-testid": "load-more", onclick: () => this.loadMore(), text: "加载更多" });
    this.more.replaceChildren(button);
    if ("IntersectionObserver" in window) {
      this.observer = new IntersectionObserver((seen) => seen.some((s) => s.isIntersecting) && this.loadMore(), { rootMargin: "200px" });
      this.observer.observe(button);
    }
  }

  async loadMore() {
    if (this.loadingMore || !this.cursor) return;
    this.loadingMore = true;
    this.more.replaceChildren(el("p", { class: "end", text: "加载中…" }));
    try {
      this.append(await this.api.customer(this.externalUserId, this.cursor));
    } catch (error) {
      if (error.status === 401) return this.sessionEnded();
      this.more.replaceChildren(
        el("p", { class: "end", text: `加载失败：${error.message}` }),
        el("button", { type: "button", class: "button", "data-testid": "load-more", onclick: () => this.loadMore(), text: "重试" }),
      );
    } finally {
      this.loadingMore = false;
    }
  }
}

async function main() {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    return showState("error", "页面配置有误", error.message, retry);
  }
  await new Sidebar(config, new Api(config.apiBase)).start();
}

main().catch((error) => showState("error", "出错了", String(error), retry));
