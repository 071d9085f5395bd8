// The page's settings: ./config.json next to index.html (written at deployment; the local stack
// serves its own). Everything here is public: ids and URLs, never a secret.

export const OFFICIAL_SDK_SCRIPTS = [
  "https://res.wx.qq.com/open/js/jweixin-1.2.0.js", // wx.config, wx.invoke
  "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js", // wx.agentConfig
];
export const OFFICIAL_OAUTH_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize";

export async function loadConfig(url = new URL("../config.json", import.meta.url)) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const raw = await response.json();
  if (!raw.corp_id) throw new Error("config.json: corp_id is empty");
  return {
    apiBase: String(raw.api_base || "").replace(/\/+$/, ""),
    corpId: String(raw.corp_id),
    agentId: String(raw.agent_id || ""),
    // swappable for local click-through and tests: scripts that define the `wx` global
    sdkScripts: Array.isArray(raw.sdk_scripts) && raw.sdk_scripts.length ? raw.sdk_scripts : OFFICIAL_SDK_SCRIPTS,
    oauthAuthorize: raw.oauth_authorize_url || OFFICIAL_OAUTH_AUTHORIZE,
    pageSize: Number(raw.page_size) || 0,
  };
}
