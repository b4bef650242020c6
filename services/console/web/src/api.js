// The console's JSON API: same-origin fetches with the session cookie; changes carry the
// session's CSRF token. A refusal throws ApiError with the service's status name.
let csrf = null

export function setCsrf(token) {
  csrf = token
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

const unauthorized = new Set()

export function onUnauthorized(fn) {
  unauthorized.add(fn)
}

export function queryString(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '' || v === false) continue
    q.set(k, Array.isArray(v) ? v.join(',') : String(v))
  }
  const s = q.toString()
  return s ? `?${s}` : ''
}

export async function api(path, { method = 'GET', body, query } = {}) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf
  let res
  try {
    res = await fetch(path + queryString(query), {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', String(e))
  }
  const data = await res.json().catch(() => ({}))
  if (!res.ok) {
    const err = data.error || {}
    const error = new ApiError(res.status, err.code || 'UNAVAILABLE', err.message || res.statusText)
    if (res.status === 401 && path !== '/api/session') unauthorized.forEach((fn) => fn(error))
    throw error
  }
  return data
}
