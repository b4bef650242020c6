// On and off duty, and the position while on duty: the phone's location is watched, and while on
// duty the latest one is sent at once and then once a minute; off duty nothing is sent (the timer
// stops the moment the officer says so, and the server refuses a position that arrives late).
import { reactive } from 'vue'
import { api } from './api.js'
import { signedIn, state } from './state.js'

export const POSITION_INTERVAL_MS = 60_000
export const duty = reactive({ position: null, sentAt: null, error: null })
let watchId = null
let timer = null

const onDuty = () => !!state.me?.member?.on_duty

async function sendPosition() {
  if (!onDuty() || !duty.position) return
  try {
    await api('/api/officer/position', { method: 'POST', json: duty.position })
    duty.sentAt = new Date()
    duty.error = null
  } catch (e) {
    duty.error = e
  }
}

// Where the phone is (shown on the map whether or not on duty).
export function followPosition() {
  if (watchId !== null || !navigator.geolocation) return
  watchId = navigator.geolocation.watchPosition((p) => {
    const first = !duty.position
    duty.position = { lon: p.coords.longitude, lat: p.coords.latitude }
    if (first) sendPosition()
  }, (e) => { duty.error = e }, { enableHighAccuracy: true, maximumAge: 30_000 })
}

function startReporting() {
  followPosition()
  clearInterval(timer)
  timer = setInterval(sendPosition, POSITION_INTERVAL_MS)
  sendPosition()
}

function stopReporting() {
  clearInterval(timer)
  timer = null
}

export async function setDuty(wanted) {
  if (!wanted) stopReporting()  // nothing more is sent from the moment the officer says so
  const { member } = await api('/api/officer/duty', { method: 'PUT', json: { on_duty: wanted } })
  signedIn({ ...state.me, member })
  if (member.on_duty) startReporting()
}

// On start: an officer still on duty from before goes on reporting.
export function resumeDuty() {
  if (onDuty()) startReporting()
}
