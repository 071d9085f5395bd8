// The sidebar's backend: /sidebar/session, /sidebar/jsapi-config, /sidebar/customer.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || null;
  }
}

export class Api {
  constructor(base, token = null) {
    this.base = base;
    this.token = token;
  }

  async get(path, query = {}) {
    const url = new URL(this.base + path, window.location.href);
    for (const [key, value] of Object.entries(query)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
    }
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(url, { headers, cache: "no-store" });
    } catch (error) {
      throw new ApiError(0, { message: `网络错误：${error.message}` });
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  session(code) {
    return this.get("/sidebar/session", { code });
  }

  jsapiConfig(pageUrl) {
    return this.get("/sidebar/jsapi-config", { url: pageUrl });
  }

  customer(externalUserId, cursor = null) {
    return this.get("/sidebar/customer", { external_userid: externalUserId, cursor });
  }
}
