// The API-key login shared by the dashboard and the work page.
// The key stays in sessionStorage (this tab only) and goes out only in the
// Authorization header of calls to this same service.

import { say } from "./dom.js";

/**
 * Wire a page's login form. `check(key)` proves the key works (rejects with an ApiError
 * whose message is shown); `onIn(key)` shows the page's content; `onOut()` hides it.
 */
export function mountLogin({ session, check, onIn, onOut }) {
  const section = document.getElementById("login");
  const form = document.getElementById("login-form");
  const input = document.getElementById("api-key");
  const message = document.getElementById("login-message");
  const content = document.getElementById("content");
  const logout = document.getElementById("logout");

  const show = (loggedIn) => {
    section.hidden = loggedIn;
    content.hidden = !loggedIn;
    logout.hidden = !loggedIn;
  };

  async function enter(key, { restoring = false } = {}) {
    say(message, restoring ? "" : "Checking the key…", "info");
    try {
      await check(key);
    } catch (error) {
      session.key = null;
      show(false);
      say(message, restoring ? "Your session ended. Log in again." : error.message, "error");
      input.focus();
      return;
    }
    session.key = key;
    say(message, "");
    show(true);
    await onIn(key);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      say(message, "Enter the API key your organisation was given.", "error");
      input.focus();
      return;
    }
    input.value = "";
    enter(key);
  });

  logout.addEventListener("click", () => {
    session.key = null;
    show(false);
    onOut?.();
    say(message, "Logged out. The key was removed from this tab.", "ok");
    input.focus();
  });

  if (session.key) enter(session.key, { restoring: true });
  else show(false);
}
