// Chinese first, English second: the browser's language picks one, the top bar switches.
import { createI18n } from 'vue-i18n'
import zh from './zh-CN.json'
import en from './en.json'

export const LOCALES = ['zh-CN', 'en']
// Each language by its own name.
export const LOCALE_NAMES = { 'zh-CN': '中文', en: 'English' }
const STORED = 'gridbus.console.locale'

function initialLocale() {
  const saved = localStorage.getItem(STORED)
  if (LOCALES.includes(saved)) return saved
  const wanted = navigator.languages || [navigator.language]
  for (const lang of wanted) {
    if (/^zh/i.test(lang)) return 'zh-CN'
    if (/^en/i.test(lang)) return 'en'
  }
  return 'zh-CN'
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zh, en },
})

export function setLocale(locale) {
  i18n.global.locale.value = locale
  localStorage.setItem(STORED, locale)
  document.documentElement.lang = locale
}

// Catalogue names come as {zh, en}.
export function localName(names, fallback) {
  if (!names) return fallback
  return i18n.global.locale.value === 'en' ? names.en : names.zh
}
