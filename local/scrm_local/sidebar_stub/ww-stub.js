// A stand-in for WeCom's JS-SDK (`wx` of jweixin + jwxwork), served only by `scrm local run`,
// never deployed. The local stack prepends `const STUB_DEFAULTS = {...};` (its settings). The
// page URL overrides them:
//   stub_external_userid=wmEXT-1     the external contact of the "current chat"
//   stub_entry=single_chat_tools     what getContext answers (contact_profile, group_chat_tools, normal...)
//   stub_error=no%20permission       makes a call fail with "<api>:fail <error>"
//   stub_error_on=getCurExternalContact   which call fails (agentConfig, getContext, getCurExternalContact)
(function () {
  "use strict";
  const params = new URLSearchParams(window.location.search);
  const defaults = typeof STUB_DEFAULTS === "object" ? STUB_DEFAULTS : {};
  const setting = (name) => params.get(`stub_${name}`) ?? defaults[name] ?? null;
  const externalUserId = setting("external_userid");
  const entry = setting("entry") || "single_chat_tools";
  const error = setting("error");
  const errorOn = setting("error_on") || "getCurExternalContact";
  const calls = [];
  let configured = null;
  let agentConfigured = false;
  const readyCallbacks = [];
  const errorCallbacks = [];

  function signedLike(args) {
    // WeCom's signature rules: seconds (not ms) timestamps, a nonce, a 40-hex SHA-1
    return (
      /^[0-9]{9,10}$/.test(String(args.timestamp)) &&
      typeof args.nonceStr === "string" && args.nonceStr.length > 0 &&
      /^[0-9a-f]{40}$/.test(String(args.signature))
    );
  }

  function later(fn) {
    setTimeout(fn, 10);
  }

  function fail(name, why) {
    return { err_msg: `${name}:fail ${why}`, errMsg: `${name}:fail ${why}` };
  }

  const wx = {
    __stub: true,
    calls,
    config(args) {
      calls.push(["config", args]);
      configured = signedLike(args) ? true : false;
      later(() => (configured ? readyCallbacks : errorCallbacks).forEach((cb) => cb({ errMsg: configured ? "config:ok" : "config:invalid signature" })));
    },
    ready(cb) {
      if (configured === true) later(cb);
      else readyCallbacks.push(cb);
    },
    error(cb) {
      if (configured === false) later(() => cb({ errMsg: "config:invalid signature" }));
      else errorCallbacks.push(cb);
    },
    agentConfig(args) {
      calls.push(["agentConfig", args]);
      later(() => {
        if (error && errorOn === "agentConfig") return args.fail && args.fail(fail("agentConfig", error));
        if (!signedLike(args) || !args.corpid || !args.agentid) return args.fail && args.fail(fail("agentConfig", "invalid signature"));
        agentConfigured = true;
        if (args.success) args.success({ errMsg: "agentConfig:ok" });
      });
    },
    invoke(name, _args, cb) {
      calls.push(["invoke", name]);
      later(() => {
        if (!agentConfigured) return cb(fail(name, "no permission"));
        if (error && errorOn === name) return cb(fail(name, error));
        if (name === "getContext") return cb({ err_msg: "getContext:ok", entry, shareTicket: "" });
        if (name === "getCurExternalContact") {
          if (!["single_chat_tools", "contact_profile", "single_kf_tools"].includes(entry)) {
            return cb(fail(name, "without context of external contact"));
          }
          if (!externalUserId) return cb(fail(name, "no external contact configured (stub_external_userid)"));
          return cb({ err_msg: "getCurExternalContact:ok", userId: externalUserId });
        }
        return cb(fail(name, "not supported by the local stub"));
      });
    },
  };
  window.wx = wx;
})();
