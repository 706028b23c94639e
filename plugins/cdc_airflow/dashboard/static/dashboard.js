// The CDC dashboard's small script: expand an error or a run's details, open a fold of idle runs, apply the
// filter on change, refresh the live part every few seconds, and open Airflow's own pages in Airflow (the
// page runs in a sandboxed iframe that may not navigate the top window, but may use its history).
(() => {
  "use strict";
  const body = document.body;
  const seconds = Number(body.dataset.refreshSeconds || 0);
  const open = { runs: new Set(), folds: new Set() };

  function toggleDetails(runId) {
    const row = document.querySelector(`tr.details[data-details="${CSS.escape(runId)}"]`);
    if (!row) return;
    row.hidden = !row.hidden;
    row.hidden ? open.runs.delete(runId) : open.runs.add(runId);
  }

  function toggleFold(fold) {
    fold.classList.toggle("open");
    const key = fold.dataset.fold;
    fold.classList.contains("open") ? open.folds.add(key) : open.folds.delete(key);
    const button = fold.querySelector(".fold-toggle");
    if (button) button.textContent = button.textContent.replace(/^[▸▾]/, fold.classList.contains("open") ? "▾" : "▸");
  }

  function restore() {
    open.runs.forEach((runId) => {
      const row = document.querySelector(`tr.details[data-details="${CSS.escape(runId)}"]`);
      if (row) row.hidden = false;
    });
    open.folds.forEach((key) => {
      const fold = document.querySelector(`tbody.fold[data-fold="${CSS.escape(key)}"]`);
      if (fold && !fold.classList.contains("open")) toggleFold(fold);
    });
  }

  function openInAirflow(href) {
    // Airflow's UI routes on the top window's history (React Router listens to popstate).
    try {
      const top = window.top;
      if (top === window || top.location.origin !== window.location.origin) return false;
      const index = ((top.history.state && top.history.state.idx) || 0) + 1;
      top.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx: index }, "", href);
      top.dispatchEvent(new PopStateEvent("popstate", { state: top.history.state }));
      return true;
    } catch (error) {
      return false;
    }
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-airflow]");
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey && openInAirflow(link.getAttribute("href"))) {
      event.preventDefault();
      return;
    }
    const toggle = event.target.closest("[data-toggle]");
    if (toggle) { toggleDetails(toggle.dataset.toggle); return; }
    const foldButton = event.target.closest(".fold-toggle");
    if (foldButton) toggleFold(foldButton.closest("tbody.fold"));
  });

  document.addEventListener("change", (event) => {
    const form = event.target.closest("form.filters");
    if (form) form.submit();
  });

  async function refresh() {
    const auto = document.getElementById("auto-refresh");
    if (!auto || !auto.checked || document.hidden) return;
    const stamp = document.getElementById("updated");
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(response.status === 401 || response.status === 403
        ? "logged out: reload the page" : `the server answered ${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("live");
      const live = document.getElementById("live");
      if (fresh && live) { live.replaceWith(fresh); restore(); }
      const freshStamp = page.getElementById("updated");
      if (stamp && freshStamp) { stamp.textContent = freshStamp.textContent; stamp.dataset.at = freshStamp.dataset.at; }
      if (page.title) document.title = page.title;
      stamp && stamp.parentElement.classList.remove("stale");
    } catch (error) {
      if (stamp) { stamp.textContent = `not refreshed: ${error.message}`; stamp.parentElement.classList.add("stale"); }
    }
  }

  if (seconds > 0) window.setInterval(refresh, seconds * 1000);
})();
