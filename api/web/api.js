// Calls to the service's JSON API from the pages, with the API key of the session and
// RFC 9457 problem+json answers turned into sentences a person can act on.

/** An answer that was not a success: `message` is for people, `problem` the raw body. */
export class ApiError extends Error {
  constructor(status, message, problem = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }
}

// Said when the service gave no detail of its own.
const FALLBACK = {
  400: "The service could not read the request.",
  401: "The API key is missing, unknown or revoked. Log in again with a valid key.",
  403: "This API key is not allowed to do that.",
  404: "Nothing was found under that name.",
  409: "The record was refused because it conflicts with what is already recorded.",
  413: "What was sent is too large.",
  422: "Some of the values are not valid.",
  429: "Too many requests in a short time. Wait a moment and try again.",
  500: "The service had a problem. Try again in a moment.",
  504: "The service took too long to answer. Try again.",
};

/** The sentence to show for a problem+json body (its `detail`, made readable). */
export function problemWords(status, problem) {
  if (problem && Array.isArray(problem.errors) && problem.errors.length) {
    // Validation errors: "body.soh_pct: Input should be ..." -> "soh_pct: input should be ..."
    return problem.errors
      .slice(0, 5)
      .map((e) => {
        const field = String(e.field || "").replace(/^(body|query|path|header)\.?/, "");
        const reason = String(e.reason || "").replace(/^Value error, /, "");
        return field ? `${field.replaceAll("_", " ")}: ${reason}` : reason;
      })
      .join("; ");
  }
  const detail = problem && typeof problem.detail === "string" ? problem.detail.trim() : "";
  if (!detail) return FALLBACK[status] || `The service answered with an error (${status}).`;
  const sentence = detail.charAt(0).toUpperCase() + detail.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

/** The API key of this page's session (sessionStorage: gone when the tab closes). */
export class Session {
  constructor(name) {
    this.storageKey = `suyuan.apiKey.${name}`;
  }

  get key() {
    try {
      return sessionStorage.getItem(this.storageKey);
    } catch {
      return null; // storage disabled: the key lives only as long as the page
    }
  }

  set key(value) {
    try {
      if (value) sessionStorage.setItem(this.storageKey, value);
      else sessionStorage.removeItem(this.storageKey);
    } catch {
      // nothing to do: see the getter
    }
  }
}

/**
 * Call the API. Resolves to parsed JSON (or the Response when `raw`); rejects with
 * ApiError carrying a sentence for people.
 */
export async function call(path, { method = "GET", key = null, body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "The service could not be reached. Check the connection and try again.");
  }
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // not JSON: the fallback sentence will do
    }
    throw new ApiError(response.status, problemWords(response.status, problem), problem);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(name, value);
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}
