// Emergency alerts for the signed-in officer: the console passes on the officer's alert stream as
// server-sent events (/api/officer/alerts/stream). An alert is open until the officer answers,
// someone else takes it, or its case ends first (withdrawn); then it is shown as such for a
// moment and goes. Open and accepted alerts are kept in localStorage and checked again on every
// (re)connection, so a reload or a dropped stream never leaves a stale one on the screen.
import { reactive, watch } from 'vue'
import { api } from './api.js'
import { refreshSession, state } from './state.js'

const KEPT = 'gridbus.officer.alerts'
const GONE_AFTER_MS = 6000          // how long "taken by …" or "withdrawn" stays before the card goes
const RETRY_MS = [1000, 3000, 10000]

export const alerts = reactive({ items: [], live: false })
let source = null
let failures = 0
let retry = null

function keep() {
  const lasting = alerts.items.filter((a) => a.status === 'open' || a.taken_by_me)
  localStorage.setItem(KEPT, JSON.stringify(lasting))
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(KEPT) || '[]')
  } catch {
    return []
  }
}

export const find = (id) => alerts.items.find((a) => a.id === id)

// What the app shows of an alert: open (answer it), mine (accepted by me), taken (by someone
// else), withdrawn (its case ended) or declined (by me); the last three go after a moment.
export function shownAs(a) {
  if (a.status === 'accepted') return a.taken_by_me ? 'mine' : 'taken'
  if (a.status === 'withdrawn') return 'withdrawn'
  if (a.answer === 'declined') return 'declined'
  return 'open'
}

function put(alert) {
  const i = alerts.items.findIndex((a) => a.id === alert.id)
  if (i >= 0) {
    // a notice does not carry the officer's own distance and answer: keep what was known
    alerts.items[i] = { ...alerts.items[i], ...Object.fromEntries(Object.entries(alert).filter(([, v]) => v !== null)) }
  } else if (alert.status === 'open') {
    alerts.items.unshift(alert)
    navigator.vibrate?.([300, 100, 300])
  } else {
    return  // taken or withdrawn before this phone heard of it: nothing to show
  }
  const now = shownAs(find(alert.id))
  if (now === 'taken' || now === 'withdrawn' || now === 'declined') {
    setTimeout(() => forget(alert.id), GONE_AFTER_MS)
  }
  keep()
}

function forget(id) {
  alerts.items = alerts.items.filter((a) => a.id !== id || shownAs(a) === 'open' || shownAs(a) === 'mine')
  keep()
}

// Each open or accepted alert as the emergencies service has it now (after a gap in the stream).
async function recheck() {
  for (const a of [...alerts.items]) {
    try {
      put((await api(`/api/officer/alerts/${a.id}`)).alert)
    } catch (e) {
      if (!e.transient) {
        alerts.items = alerts.items.filter((x) => x.id !== a.id)
        keep()
      }
    }
  }
}

function connect() {
  disconnect()
  source = new EventSource('/api/officer/alerts/stream')
  source.addEventListener('ready', () => {
    alerts.live = true
    failures = 0
    recheck()
  })
  source.addEventListener('alert', (e) => put(JSON.parse(e.data)))
  source.addEventListener('failed', () => reconnectLater())
  source.onerror = () => {
    alerts.live = false
    // The browser retries by itself after a dropped connection, but not after a refusal (a
    // session that ended, the service down): then, if the session still stands, try again.
    if (source.readyState === EventSource.CLOSED) refreshSession().then(reconnectLater)
  }
}

function reconnectLater() {
  disconnect()
  if (!state.me) return
  retry = setTimeout(connect, RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)])
}

function disconnect() {
  clearTimeout(retry)
  source?.close()
  source = null
  alerts.live = false
}

// The stream is held while an officer is signed in; signing out drops it and what it showed.
export function watchAlerts() {
  alerts.items = remembered()
  watch(() => state.me?.member_id, (member) => {
    if (member) {
      connect()
    } else {
      disconnect()
      alerts.items = []
      localStorage.removeItem(KEPT)
    }
  }, { immediate: true })
  window.addEventListener('online', () => state.me && !alerts.live && connect())
}

// First accept wins: when someone was quicker the service says so (409), and the alert as it is
// now says who.
export async function accept(id) {
  try {
    put((await api(`/api/officer/alerts/${id}/accept`, { method: 'POST', json: {} })).alert)
  } catch (e) {
    if (e.status === 409) put((await api(`/api/officer/alerts/${id}`)).alert)
    throw e
  }
}

export async function decline(id, reason) {
  put((await api(`/api/officer/alerts/${id}/decline`, { method: 'POST', json: { reason } })).alert)
}

export function dismiss(id) {
  alerts.items = alerts.items.filter((a) => a.id !== id)
  keep()
}
