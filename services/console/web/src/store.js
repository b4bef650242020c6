// The page's state: who is signed in, the reference lists, the work-queue filter the list and
// the map share (kept in the address, so a view can be bookmarked), toasts.
import { reactive } from 'vue'
import { api, setCsrf } from './api.js'
import { i18n } from './i18n/index.js'

export const EMPTY_FILTER = Object.freeze({
  status: [], category: '', unit: '', overdue: false, escalated: false, manual: false, from: '', to: '',
})

export const state = reactive({
  config: null,
  me: null,
  reference: { categories: [], departments: [] },
  filter: { ...EMPTY_FILTER, status: [] },
  live: { connected: false, count: 0, last: null },
  toasts: [],
})

export async function loadConfig() {
  state.config = await api('/api/config')
}

function signedIn(me) {
  state.me = me
  setCsrf(me.csrf)
}

export async function restoreSession() {
  try {
    signedIn(await api('/api/session'))
  } catch {
    state.me = null
  }
  return state.me
}

export async function signIn(fields) {
  signedIn(await api('/api/session', { method: 'POST', body: fields }))
}

export async function signOut() {
  try {
    await api('/api/session', { method: 'DELETE' })
  } finally {
    state.me = null
    setCsrf(null)
  }
}

export async function loadReference() {
  state.reference = await api('/api/reference')
}

export function categoryName(code) {
  const c = state.reference.categories.find((x) => x.code === code)
  if (!c) return code
  return i18n.global.locale.value === 'en' ? c.names.en : c.names.zh
}

export function departmentName(code) {
  if (!code) return ''
  const d = state.reference.departments.find((x) => x.code === code)
  if (!d) return code
  return i18n.global.locale.value === 'en' ? d.names.en : d.names.zh
}

// --- the shared filter <-> the address ------------------------------------------------------

export function filterQuery(filter = state.filter) {
  return {
    status: filter.status.length ? filter.status.join(',') : '',
    category: filter.category, unit: filter.unit,
    overdue: filter.overdue ? 'true' : '', escalated: filter.escalated ? 'true' : '',
    manual: filter.manual ? 'true' : '',
    from: filter.from ? new Date(filter.from).toISOString() : '',
    to: filter.to ? new Date(filter.to).toISOString() : '',
  }
}

export function filterFromQuery(q) {
  const local = (iso) => {
    if (!iso) return ''
    const d = new Date(iso)
    return Number.isNaN(d.getTime()) ? '' : new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16)
  }
  return {
    status: q.status ? String(q.status).split(',').filter(Boolean) : [],
    category: q.category || '', unit: q.unit || '',
    overdue: q.overdue === 'true', escalated: q.escalated === 'true', manual: q.manual === 'true',
    from: local(q.from), to: local(q.to),
  }
}

export function setFilter(filter) {
  Object.assign(state.filter, { ...EMPTY_FILTER, ...filter, status: [...(filter.status || [])] })
}

// --- toasts -----------------------------------------------------------------------------------

let toastId = 0

export function toast(kind, text, detail = '') {
  const id = ++toastId
  state.toasts.push({ id, kind, text, detail })
  setTimeout(() => {
    const i = state.toasts.findIndex((t) => t.id === id)
    if (i >= 0) state.toasts.splice(i, 1)
  }, kind === 'error' ? 9000 : 5000)
}

// A service's refusal in plain words, with its own message as the detail.
export function errorWords(error) {
  const key = `errors.${error.code}`
  const t = i18n.global.t
  return { text: i18n.global.te(key) ? t(key) : t('errors.UNKNOWN'), detail: error.message || '' }
}

export function toastError(error) {
  const { text, detail } = errorWords(error)
  toast('error', text, detail)
}
