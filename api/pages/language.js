// The language switch of signed-in pages (api/pages/languages.html). Signed out, or without script,
// its links serve the page in that language (?lang=). Signed in, a click saves the choice as the
// user's own setting (PUT /api/v1/me/language, which also sets the cookie pages are served by) and
// reloads the page, now served in that language; API errors and labels follow the same setting.
"use strict";

(function () {
  const nav = document.getElementById("languages");
  if (!nav) return;
  nav.addEventListener("click", async (ev) => {
    const link = ev.target.closest("a[data-lang]");
    const token = sessionStorage.getItem("custody_token");
    if (!link || !token) return;
    ev.preventDefault();
    try {
      const resp = await fetch("/api/v1/me/language", {
        method: "PUT",
        credentials: "same-origin",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ language: link.dataset.lang }),
      });
      if (!resp.ok) {
        let detail = resp.statusText;
        try { detail = (await resp.json()).detail; } catch (e) { /* not JSON */ }
        throw new Error(`${resp.status}: ${detail}`);
      }
      const url = new URL(location.href);
      url.searchParams.delete("lang"); // the user's own setting decides from now on
      location.replace(url.toString());
    } catch (e) {
      const box = document.getElementById("error");
      box.textContent = (nav.dataset.failed || "{error}").replace("{error}", e.message);
      box.hidden = false;
    }
  });
})();
