// The agent's session: a token from GET /sidebar/session, kept in sessionStorage (per tab), and
// the snsapi_base OAuth redirect that yields the code for it.

const TOKEN_KEY = "scrm.sidebar.session";
const STATE_KEY = "scrm.sidebar.oauth_state";
const REAUTH_KEY = "scrm.sidebar.reauth";

export function storedToken(now = Date.now() / 1000) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    if (saved && saved.token && Number(saved.expires_at) > now + 30) return saved;
  } catch {
    /* unreadable: start over */
  }
  sessionStorage.removeItem(TOKEN_KEY);
  return null;
}

export function keepToken(session) {
  sessionStorage.setItem(
    TOKEN_KEY,
    JSON.stringify({ token: session.token, userid: session.userid, expires_at: session.expires_at }),
  );
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// The page URL WeCom redirects back to: this one without the code/state it appended and the #.
export function returnUrl(href = window.location.href) {
  const url = new URL(href);
  url.hash = "";
  url.searchParams.delete("code");
  url.searchParams.delete("state");
  return url.toString();
}

// `code` and `state` WeCom appended, when the state is the one this tab sent.
export function oauthCallback(href = window.location.href) {
  const url = new URL(href);
  const code = url.searchParams.get("code");
  if (!code) return null;
  const expected = sessionStorage.getItem(STATE_KEY);
  sessionStorage.removeItem(STATE_KEY);
  const state = url.searchParams.get("state");
  return { code, stateOk: Boolean(expected) && state === expected };
}

export function oauthUrl(config, redirectUri, state) {
  const url = new URL(config.oauthAuthorize, window.location.href);
  url.searchParams.set("appid", config.corpId);
  url.searchParams.set("redirect_uri", redirectUri);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", "snsapi_base");
  url.searchParams.set("state", state);
  if (config.agentId) url.searchParams.set("agentid", config.agentId);
  url.hash = "wechat_redirect";
  return url.toString();
}

// Leave for WeCom's OAuth page. `again` marks a re-run after a 401 (allowed once per tab).
export function redirectToOAuth(config, { again = false } = {}) {
  if (again) {
    if (sessionStorage.getItem(REAUTH_KEY)) return false;
    sessionStorage.setItem(REAUTH_KEY, "1");
  }
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const state = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""); // [a-f0-9], 24 chars
  sessionStorage.setItem(STATE_KEY, state);
  forgetToken();
  window.location.replace(oauthUrl(config, returnUrl(), state));
  return true;
}

export function signedIn() {
  sessionStorage.removeItem(REAUTH_KEY);
}
