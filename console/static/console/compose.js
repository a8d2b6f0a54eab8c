// The compose page: pick recipients, write, see the preview as you type, confirm, send.
// Every number shown comes from the API's preview (the same planning as the send itself).
"use strict";

(() => {
  const form = document.getElementById("compose");
  const labels = JSON.parse(document.getElementById("labels").textContent);
  const $ = (id) => document.getElementById(id);
  const picked = new Map(); // student id → name
  let previewSeq = 0;
  let lastPreview = null;
  // The body lastPreview answered: a form "change" that alters nothing (leaving the text box to
  // click 보내기) must not start a preview, which would turn the button off under the click.
  let lastPreviewedBody = null;
  let idempotencyKey = form.dataset.idempotencyKey;

  const checked = (name) => form.querySelector(`input[name=${name}]:checked`).value;
  const classIds = () => [...form.querySelectorAll("input[name=class_ids]:checked")].map((box) => Number(box.value));

  function request() {
    const mode = checked("message_mode");
    const body = {
      student_ids: [...picked.keys()],
      send_to: checked("send_to"),
      purpose: checked("purpose"),
      message_mode: mode,
      body: $("body").value,
      subject: $("subject").value,
      template_id: mode === "sms" ? "" : $("template").value,
    };
    const classes = classIds();
    if (classes.length) body.class_ids = classes;
    // The browser's local time (staff are in Korea), sent with its offset.
    if ($("send-at").value) body.send_at = new Date($("send-at").value).toISOString();
    return body;
  }

  // --- recipients -------------------------------------------------------------------

  function renderPicked() {
    const list = $("picked");
    list.replaceChildren();
    for (const [id, name] of picked) {
      const li = Console.item(name, "chip");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `${name} 빼기`);
      remove.addEventListener("click", () => {
        picked.delete(id);
        const add = document.querySelector(`.add-student[data-student-id="${id}"]`);
        if (add) add.disabled = false;
        renderPicked();
        schedulePreview();
      });
      li.append(remove);
      list.append(li);
    }
    $("picked-count").textContent = `${picked.size}명`;
  }

  let searchSeq = 0;
  const search = Console.debounce(async () => {
    const seq = ++searchSeq;
    const query = $("student-search").value.trim();
    const results = $("search-results");
    if (!query) {
      results.replaceChildren();
      return;
    }
    const url = `${form.dataset.studentsUrl}?search=${encodeURIComponent(query)}&page_size=20`;
    const answer = await Console.api(url);
    if (seq !== searchSeq) return; // a newer search is on its way
    if (!answer.ok) {
      results.replaceChildren(Console.item(Console.koreanError(answer), "error"));
      return;
    }
    const students = answer.data.results || [];
    if (!students.length) {
      results.replaceChildren(Console.item("찾는 학생이 없습니다.", "muted"));
      return;
    }
    results.replaceChildren(...students.map((student) => {
      const li = document.createElement("li");
      const add = document.createElement("button");
      add.type = "button";
      add.className = "add-student";
      add.dataset.studentId = student.id;
      add.textContent = `${student.name} 추가`;
      add.disabled = picked.has(student.id);
      add.addEventListener("click", () => {
        picked.set(student.id, student.name);
        add.disabled = true;
        renderPicked();
        schedulePreview();
      });
      li.append(add);
      if (student.parent_phone) li.append(` 학부모 ${student.parent_phone}`);
      return li;
    }));
  }, 250);

  // --- preview ----------------------------------------------------------------------

  function setNumbers({ bytes = "-", type = "-", recipients = 0, skipped = 0, cost = 0, after = null }) {
    $("bytes").textContent = bytes;
    $("type").textContent = type;
    $("recipients").textContent = `${Console.count(recipients)}명`;
    $("skipped").textContent = `${Console.count(skipped)}명`;
    $("cost").textContent = Console.won(cost);
    $("after").textContent = after === null ? $("available").textContent : Console.won(after);
  }

  function showNotes(notes) {
    $("warnings").replaceChildren(...notes.map(([text, kind]) => Console.item(text, kind)));
  }

  function summarize(preview) {
    const sendable = preview.recipients.filter((r) => !r.skip_reason);
    const bytes = Math.max(0, ...sendable.map((r) => r.bytes));
    const types = new Map();
    for (const r of sendable) {
      const name = labels.types[r.type] || r.type;
      const shown = r.fallback_type ? `${name} (대체: ${labels.types[r.fallback_type] || r.fallback_type})` : name;
      types.set(shown, (types.get(shown) || 0) + 1);
    }
    const reasons = new Map();
    for (const r of preview.recipients.filter((r) => r.skip_reason)) {
      reasons.set(r.skip_reason, (reasons.get(r.skip_reason) || 0) + 1);
    }
    return { sendable, bytes, types, reasons };
  }

  function render(preview) {
    const { sendable, bytes, types, reasons } = summarize(preview);
    const typeText = [...types].map(([name, n]) => (types.size > 1 ? `${name} ${Console.count(n)}건` : name));
    setNumbers({
      bytes: sendable.length ? `${Console.count(bytes)}바이트` : "-",
      type: typeText.join(", ") || "-",
      recipients: preview.sendable,
      skipped: preview.skipped,
      cost: preview.total_cost,
      after: Number(preview.available) - Number(preview.total_cost),
    });
    $("available").textContent = Console.won(preview.available);
    $("skip-reasons").replaceChildren(...[...reasons].map(([reason, n]) =>
      Console.item(`${labels.skip_reasons[reason] || reason}: ${Console.count(n)}명 제외`)));
    const notes = preview.warnings.map((w) => [w.messages.ko, "warn"]);
    if (!preview.sufficient_credit) notes.push(["충전금이 부족합니다. 충전 후 보내 주세요.", "error"]);
    if (!preview.sendable) notes.push(["보낼 수 있는 받는 사람이 없습니다. 제외 사유를 확인해 주세요.", "error"]);
    showNotes(notes);
    const sample = $("sample");
    sample.hidden = !sendable.length;
    sample.textContent = sendable.length ? `예: ${sendable[0].text}` : "";
    $("send").disabled = !preview.sendable || !preview.sufficient_credit;
  }

  async function preview() {
    const body = request();
    const bodyText = JSON.stringify(body);
    if (lastPreview && bodyText === lastPreviewedBody) return; // nothing changed since it
    const seq = ++previewSeq;
    lastPreview = null;
    $("send").disabled = true;
    if (!body.student_ids.length && !(body.class_ids || []).length) {
      setNumbers({});
      $("skip-reasons").replaceChildren();
      showNotes([["받는 사람(반 또는 학생)을 선택해 주세요.", "muted"]]);
      return;
    }
    const answer = await Console.api(form.dataset.previewUrl, { method: "POST", body });
    if (seq !== previewSeq) return; // a newer keystroke's preview is on its way
    if (!answer.ok) {
      setNumbers({});
      $("skip-reasons").replaceChildren();
      $("sample").hidden = true;
      const rule = String(answer.data && answer.data.code).startsWith("ad_") ? "광고 규칙: " : "";
      showNotes([[rule + Console.koreanError(answer), "error"]]);
      return;
    }
    lastPreview = answer.data;
    lastPreviewedBody = bodyText;
    render(answer.data);
  }

  const schedulePreview = Console.debounce(preview, 300);

  // --- sending ----------------------------------------------------------------------

  function confirmSend() {
    if (!lastPreview) return;
    const p = lastPreview;
    $("confirm-text").textContent =
      `${Console.count(p.sendable)}명에게 보냅니다. 예상 비용 ${Console.won(p.total_cost)}, ` +
      `발송 후 남는 충전금 ${Console.won(Number(p.available) - Number(p.total_cost))}` +
      (p.skipped ? ` (${Console.count(p.skipped)}명 제외)` : "") + "." +
      ($("send-at").value ? ` 예약 발송: ${new Date($("send-at").value).toLocaleString("ko-KR")}.` : "");
    $("send-error").hidden = true;
    $("confirm").showModal();
  }

  async function send() {
    const button = $("confirm-send");
    button.disabled = true;
    const answer = await Console.api(form.dataset.sendUrl, {
      method: "POST", body: request(), headers: { "Idempotency-Key": idempotencyKey },
    });
    button.disabled = false;
    if (answer.status === 202) {
      // The next send from this page (after going back) is a new one.
      idempotencyKey = `${idempotencyKey.slice(0, 16)}${Date.now().toString(16)}`;
      window.location.assign(form.dataset.watchUrl.replace("/0/", `/${answer.data.id}/`));
      return;
    }
    $("send-error").textContent = Console.koreanError(answer);
    $("send-error").hidden = false;
  }

  // --- wiring -----------------------------------------------------------------------

  function modeChanged() {
    const mode = checked("message_mode");
    $("template-field").hidden = mode === "sms";
    $("ad-rules").open = checked("purpose") === "ad";
  }

  $("template").addEventListener("change", () => {
    const option = $("template").selectedOptions[0];
    $("template-content").textContent = option && option.dataset.content ? option.dataset.content : "";
  });
  $("insert-name").addEventListener("click", () => {
    const body = $("body");
    body.setRangeText("#{이름}", body.selectionStart, body.selectionEnd, "end");
    body.focus();
    schedulePreview();
  });
  const adFrame = $("ad-frame");
  if (adFrame) {
    adFrame.addEventListener("click", () => {
      const body = $("body");
      let text = body.value.trim();
      if (!text.startsWith("(광고)")) text = `${adFrame.dataset.head}\n${text}`;
      if (!text.endsWith(adFrame.dataset.foot)) text = `${text}\n${adFrame.dataset.foot}`;
      body.value = text;
      schedulePreview();
    });
  }
  $("student-search").addEventListener("input", search);
  form.addEventListener("input", (event) => {
    if (event.target.id !== "student-search") schedulePreview();
  });
  form.addEventListener("change", () => {
    modeChanged();
    schedulePreview();
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  $("send").addEventListener("click", confirmSend);
  $("confirm-cancel").addEventListener("click", () => $("confirm").close());
  $("confirm-send").addEventListener("click", send);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload(); // a page restored from history gets a fresh key
  });
  modeChanged();
  preview();
})();
