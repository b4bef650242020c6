// The outbox: a report is written to IndexedDB with its photos the moment the officer presses
// send (its report_id made then, once), and leaves only when the server has it. Sending uploads
// each photo not yet uploaded (the store answers the same hash for the same photo, so a retry
// stores nothing new), then the report through the incidents service's idempotent intake: a
// report that reached the server before the network dropped is answered as a replay, never made
// twice. It tries on start, when the network returns, after each new report and every 30 s.
import { reactive, toRaw } from 'vue'
import { api } from './api.js'
import { outboxStore } from './idb.js'

export const outbox = reactive({ items: [], sending: false, lastSent: null })
// After a failure for want of network: again in 3 s, 6 s, 12 s... at most every 30 s (a phone's
// "online" flag is not to be trusted: it says online on a dead Wi-Fi).
const RETRY_FIRST_MS = 3_000
const RETRY_MAX_MS = 30_000
let retryMs = RETRY_FIRST_MS
let retryTimer = null

function retryLater() {
  clearTimeout(retryTimer)
  retryTimer = setTimeout(flush, retryMs)
  retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)
}

export function newReportId() {
  if (crypto.randomUUID) return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))  // a version 4 UUID where randomUUID is missing
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

async function stored() {
  return (await outboxStore.all()).sort((a, b) => a.created_at.localeCompare(b.created_at))
}

export async function loadOutbox() {
  outbox.items = await stored()
}

export async function enqueue(report, photos) {
  const record = {
    ...report, report_id: newReportId(), created_at: new Date().toISOString(), state: 'waiting', error: null,
    photos: photos.map((p) => ({ blob: p, type: p.type, uploaded: null })),
  }
  await outboxStore.put(record)
  await loadOutbox()
  return record
}

async function sendOne(record) {
  for (const photo of record.photos) {
    if (photo.uploaded) continue
    photo.uploaded = await api('/api/officer/attachments', { method: 'POST', body: photo.blob, type: photo.type })
    await outboxStore.put(record)  // an uploaded photo is not uploaded again after a restart
  }
  const { photos, state, error, created_at: createdAt, ...report } = record
  const answer = await api('/api/officer/reports', {
    method: 'POST',
    json: { ...report, attachments: photos.map((p) => {
      const { created, ...ref } = p.uploaded
      return ref
    }) },
  })
  await outboxStore.remove(record.report_id)
  outbox.lastSent = { report_id: record.report_id, incident_id: answer.incident.id, replayed: answer.replayed }
  return answer
}

// Sends what waits, oldest first; stops at the first sign of no network (and tries later).
export async function flush() {
  if (outbox.sending) return
  outbox.sending = true
  try {
    for (const record of (await stored()).filter((r) => r.state !== 'failed')) {
      try {
        await sendOne(record)
        retryMs = RETRY_FIRST_MS
      } catch (e) {
        if (e.transient) {  // no network, or the service is down: it waits as it is
          retryLater()
          break
        }
        if (e.status === 401) break  // signed out: it waits for the officer to sign in again
        record.state = 'failed'
        record.error = { code: e.code, message: e.message }
        await outboxStore.put(record)
      }
    }
  } finally {
    outbox.sending = false
    await loadOutbox()
  }
}

export async function retry(record) {
  await outboxStore.put({ ...toRaw(record), state: 'waiting', error: null })
  await flush()
}

export async function discard(record) {
  await outboxStore.remove(record.report_id)
  await loadOutbox()
}

let started = false

export function startOutbox() {
  if (!started) {
    started = true
    window.addEventListener('online', () => { retryMs = RETRY_FIRST_MS; flush() })
  }
  return loadOutbox().then(flush)
}
