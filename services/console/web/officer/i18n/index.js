// Chinese first, English second: the phone's language picks one, the header switches.
import { createI18n } from 'vue-i18n'
import zh from './zh-CN.json'
import en from './en.json'

export const LOCALES = ['zh-CN', 'en']
export const LOCALE_NAMES = { 'zh-CN': '中文', en: 'English' }
const STORED = 'gridbus.officer.locale'

function initialLocale() {
  const saved = localStorage.getItem(STORED)
  if (LOCALES.includes(saved)) return saved
  for (const lang of navigator.languages || [navigator.language]) {
    if (/^zh/i.test(lang)) return 'zh-CN'
    if (/^en/i.test(lang)) return 'en'
  }
  return 'zh-CN'
}

export const i18n = createI18n({
  legacy: false, locale: initialLocale(), fallbackLocale: 'zh-CN', messages: { 'zh-CN': zh, en },
})

export function setLocale(locale) {
  i18n.global.locale.value = locale
  localStorage.setItem(STORED, locale)
  document.documentElement.lang = locale
}

// Catalogue names come as { zh, en }.
export function localName(names) {
  if (!names) return ''
  return i18n.global.locale.value === 'en' ? names.en || names.zh : names.zh || names.en
}
