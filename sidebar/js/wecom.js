// The WeCom JS-SDK: load it (the script URLs are configurable, so a stub can stand in locally),
// register the page (wx.config with the corp ticket, wx.agentConfig with the app ticket), then ask
// where the page was opened and which external contact the agent is talking to.

export const ALLOWED_ENTRIES = ["single_chat_tools", "contact_profile"];
const JS_API_LIST = ["getContext", "getCurExternalContact"];

export class WeComError extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.async = false;
    script.onload = () => resolve();
    script.onerror = () => reject(new WeComError("load", `无法加载企业微信 JS-SDK：${src}`));
    document.head.appendChild(script);
  });
}

export async function loadSdk(scripts) {
  for (const src of scripts) await loadScript(src); // in order: jwxwork extends jweixin's wx
  if (!window.wx || typeof window.wx.agentConfig !== "function") {
    throw new WeComError("load", "企业微信 JS-SDK 不可用：请在企业微信客户端中打开");
  }
  return window.wx;
}

function errMsg(result) {
  return (result && (result.errMsg || result.err_msg)) || "unknown error";
}

// wx.config (needed by clients before 3.0.24; its failure is not fatal on newer ones), then
// wx.agentConfig, which getContext and getCurExternalContact need.
export function register(wx, signed) {
  return new Promise((resolve, reject) => {
    let configured = false;
    const agentConfig = () => {
      if (configured) return;
      configured = true;
      wx.agentConfig({
        corpid: signed.corp_id,
        agentid: signed.agent_id,
        timestamp: signed.agent_config.timestamp,
        nonceStr: signed.agent_config.nonceStr,
        signature: signed.agent_config.signature,
        jsApiList: JS_API_LIST,
        success: () => resolve(),
        fail: (result) => reject(new WeComError("agentConfig", errMsg(result))),
      });
    };
    wx.config({
      beta: true, // wx.invoke for WeCom's own APIs
      debug: false,
      appId: signed.corp_id,
      timestamp: signed.config.timestamp,
      nonceStr: signed.config.nonceStr,
      signature: signed.config.signature,
      jsApiList: JS_API_LIST,
    });
    wx.ready(agentConfig);
    wx.error(agentConfig);
  });
}

function invoke(wx, name) {
  return new Promise((resolve, reject) => {
    wx.invoke(name, {}, (result) => {
      if (errMsg(result) === `${name}:ok`) resolve(result);
      else reject(new WeComError(name, errMsg(result)));
    });
  });
}

export async function currentEntry(wx) {
  return (await invoke(wx, "getContext")).entry;
}

export async function currentExternalContact(wx) {
  const result = await invoke(wx, "getCurExternalContact");
  if (!result.userId) throw new WeComError("getCurExternalContact", "no userId");
  return result.userId;
}
