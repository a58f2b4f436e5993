// The management API client. Requests are same-origin fetches with the
// session cookie; the browser marks them Sec-Fetch-Site: same-origin, which
// is what the server's cross-origin protection lets through.

/** ApiError carries the {Code, Message} body of an API error. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = null;

/**
 * onUnauthorized sets the function called when a request answers 401 (the
 * session ended), so that the app can go back to the sign-in form.
 */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/**
 * api sends a request to /api/v1 + path and returns the decoded JSON body
 * (null for 204). Errors are thrown as ApiError with the server's Message.
 * options.quiet401 skips the unauthorized handler (used for the first
 * "who am I" request and for sign-in).
 */
export async function api(method, path, body, options = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch {
    throw new ApiError(0, 'NetworkError', 'Cannot reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    // Not JSON: a proxy's error page, for instance.
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data?.Code || 'Error',
      data?.Message || `The server answered ${res.status} ${res.statusText}. Try again in a moment.`);
    if (res.status === 401 && !options.quiet401 && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  return data;
}

/** enc encodes one path segment. */
export function enc(s) {
  return encodeURIComponent(s);
}
