// What the app knows: who is signed in and the category catalogue, kept in localStorage too so
// the app opens and takes reports with no network (the server checks the session again when
// the outbox sends).
import { computed, reactive } from 'vue'
import { api, network, setCsrf } from './api.js'
import { i18n } from './i18n/index.js'

const ME = 'gridbus.officer.me'
const REFERENCE = 'gridbus.officer.reference'

function remembered(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || 'null')
  } catch {
    return null
  }
}

export const state = reactive({
  me: remembered(ME), categories: remembered(REFERENCE)?.categories || [], onLine: navigator.onLine,
  fields: [{ name: 'login', autocomplete: 'username' }, { name: 'password', secret: true, autocomplete: 'current-password' }],
})
if (state.me) setCsrf(state.me.csrf)

window.addEventListener('online', () => { state.onLine = true })
window.addEventListener('offline', () => { state.onLine = false })
// Online: the phone says so and the last call reached the server.
export const online = computed(() => state.onLine && network.reachable)

export function signedIn(me) {
  state.me = me
  setCsrf(me.csrf)
  localStorage.setItem(ME, JSON.stringify(me))
}

export function signedOut() {
  state.me = null
  setCsrf(null)
  localStorage.removeItem(ME)
}

// The session as the server has it now; offline, the remembered one stands.
export async function refreshSession() {
  try {
    signedIn(await api('/api/officer/session'))
  } catch (e) {
    if (!e.transient) signedOut()
  }
  return state.me
}

export async function loadReference() {
  try {
    const reference = await api('/api/officer/reference')
    state.categories = reference.categories
    localStorage.setItem(REFERENCE, JSON.stringify(reference))
  } catch (e) {
    if (!e.transient) throw e
  }
}

export async function loadConfig() {
  try {
    state.fields = (await api('/api/config')).signin.fields
  } catch { /* the built-in form */ }
}

export function errorWords(e) {
  const t = i18n.global.t
  const key = `errors.${e.code}`
  return { text: i18n.global.te(key) ? t(key) : t('errors.UNKNOWN'), detail: e.message }
}
