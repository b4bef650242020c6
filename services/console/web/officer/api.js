// The officer's app's calls to the console server: same-origin, the app's session cookie, its
// CSRF token on every change. A refusal throws ApiError with the status name; no network at all
// is status 0 (the outbox keeps the report and tries again).
import { reactive } from 'vue'

let csrf = null
// Whether the last call reached the server: with navigator.onLine, what the app shows as online.
export const network = reactive({ reachable: true })
const unauthorized = new Set()

export function setCsrf(token) {
  csrf = token
}

export function onUnauthorized(fn) {
  unauthorized.add(fn)
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }

  // Worth trying again later: no network, the service down or busy, a slow body.
  get transient() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500
  }
}

export async function api(path, { method = 'GET', json, body, type } = {}) {
  const headers = { Accept: 'application/json' }
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(json)
  } else if (type) {
    headers['Content-Type'] = type
  }
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf
  let res
  try {
    res = await fetch(path, { method, headers, body, credentials: 'same-origin' })
  } catch (e) {
    network.reachable = false
    throw new ApiError(0, 'UNAVAILABLE', String(e))
  }
  network.reachable = true
  const data = await res.json().catch(() => ({}))
  if (!res.ok) {
    const err = data.error || {}
    const error = new ApiError(res.status, err.code || 'UNAVAILABLE', err.message || res.statusText)
    if (res.status === 401 && !(method === 'POST' && path === '/api/officer/session')) {
      unauthorized.forEach((fn) => fn(error))
    }
    throw error
  }
  return data
}
