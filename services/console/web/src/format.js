// Times, ages and numbers in the page's language and the city's time zone.
import { i18n } from './i18n/index.js'
import { state } from './store.js'

function locale() {
  return i18n.global.locale.value
}

export function dateTime(iso) {
  if (!iso) return ''
  return new Intl.DateTimeFormat(locale(), {
    timeZone: state.config?.time_zone, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hour12: false,
  }).format(new Date(iso))
}

export function time(iso) {
  if (!iso) return ''
  return new Intl.DateTimeFormat(locale(), {
    timeZone: state.config?.time_zone, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(new Date(iso))
}

export function age(iso, now = Date.now()) {
  if (!iso) return ''
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto', style: 'short' })
  const abs = Math.abs(seconds)
  if (abs < 60) return rtf.format(seconds, 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  return rtf.format(Math.round(seconds / 86400), 'day')
}

export function percent(x) {
  return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(x || 0)
}

export function number(x, digits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(x || 0)
}
