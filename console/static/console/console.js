// What every console page's script shares: calling the JSON API as the logged-in staff
// member (session cookie, CSRF token, the academy picked in the session), and its
// refusals in Korean.
"use strict";

const Console = (() => {
  const academy = document.getElementById("academy");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");

  async function api(url, { method = "GET", body, headers = {} } = {}) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "X-Tenant": academy ? academy.dataset.slug : "",
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...(csrf ? { "X-CSRFToken": csrf.value } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  }

  // The API's refusals carry {code, messages: {ko, en}} (messaging/compose/refusals.py).
  function koreanError(result) {
    if (result.data && result.data.messages && result.data.messages.ko) return result.data.messages.ko;
    if (result.status === 0) return "서버에 연결할 수 없습니다. 잠시 후 다시 시도해 주세요.";
    return `요청을 처리하지 못했습니다 (HTTP ${result.status}). 잠시 후 다시 시도해 주세요.`;
  }

  const won = (amount) => `${Math.round(Number(amount)).toLocaleString("ko-KR")}원`;
  const count = (n) => `${Number(n).toLocaleString("ko-KR")}`;

  function debounce(fn, ms) {
    let timer;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function item(text, className) {
    const li = document.createElement("li");
    li.textContent = text;
    if (className) li.className = className;
    return li;
  }

  return { api, koreanError, won, count, debounce, item };
})();
