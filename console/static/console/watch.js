// The watch page: counts by status, polled from the status API until every message is final;
// the cancel button. When the request ends, the page reloads once to show the failures.
"use strict";

(() => {
  const POLL_MS = 2000;
  const progress = document.getElementById("progress");
  const finalStatuses = new Set(progress.dataset.final.split(","));
  const $ = (id) => document.getElementById(id);
  let timer = null;

  function show(detail) {
    const counts = detail.counts;
    let done = 0;
    for (const [status, n] of Object.entries(counts)) {
      const cell = $(`count-${status}`);
      if (cell) cell.textContent = Console.count(n);
      if (finalStatuses.has(status)) done += n;
    }
    $("bar").max = counts.total;
    $("bar").value = done;
    $("paused").hidden = !detail.paused;
    if (detail.paused) $("paused").textContent = `일시 중지: ${detail.paused.reason}`;
    // The server marks the request completed once every message is final (refresh_counts):
    // its word, not the counts alone, so the page reloaded below shows it completed.
    return Boolean(detail.completed) && done === counts.total;
  }

  async function poll() {
    const answer = await Console.api(`${progress.dataset.statusUrl}?page_size=1`);
    if (!answer.ok) {
      $("state").textContent = `상태를 읽지 못했습니다: ${Console.koreanError(answer)} 다시 시도합니다…`;
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    if (show(answer.data)) {
      $("state").textContent = "모든 메시지가 끝났습니다.";
      $("cancel").hidden = true;
      // Rendered while it ran: reload once for the failures and the retry button.
      if (!progress.dataset.completed) window.location.reload();
      return;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  $("cancel").addEventListener("click", async () => {
    if (!window.confirm("아직 보내지 않은 메시지를 취소할까요? 이미 보낸 메시지는 취소되지 않습니다.")) return;
    const button = $("cancel");
    button.disabled = true;
    const answer = await Console.api(progress.dataset.cancelUrl, { method: "POST", body: {} });
    const result = $("action-result");
    result.hidden = false;
    if (answer.ok) {
      // messaging/pipeline/cancellation.py: what had not gone to Solapi is cancelled and
      // released; what Solapi accepted, or may have, finishes and is charged only if accepted.
      const o = answer.data;
      const going = o.accepted + o.in_flight;
      result.className = "notice";
      result.textContent = `취소했습니다: ${Console.count(o.cancelled)}건 취소, 충전금 ${Console.won(o.released)} 환원.` +
        (going ? ` 이미 솔라피로 보낸 ${Console.count(going)}건은 그대로 발송됩니다.` : "");
      clearTimeout(timer);
      poll();
    } else {
      button.disabled = false;
      result.className = "error";
      result.textContent = Console.koreanError(answer);
    }
  });

  if (progress.dataset.completed) {
    $("bar").max = Number($("count-total").textContent);
    $("bar").value = $("bar").max;
  } else {
    poll();
  }
})();
