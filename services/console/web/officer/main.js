// The officer's app: an installable web app (manifest, service worker) at /officer/ of the
// console's server. Report (works offline: the outbox), the outbox, the officer's day, and
// emergency alerts (above every page).
import { createApp } from 'vue'
import { createRouter, createWebHistory } from 'vue-router'
import './style.css'
import App from './App.vue'
import { onUnauthorized } from './api.js'
import { watchAlerts } from './alerts.js'
import { i18n } from './i18n/index.js'
import { resumeDuty } from './duty.js'
import { startOutbox } from './outbox.js'
import { loadConfig, loadReference, refreshSession, signedOut, state } from './state.js'
import SignIn from './views/SignIn.vue'
import ReportView from './views/ReportView.vue'
import OutboxView from './views/OutboxView.vue'

const router = createRouter({
  history: createWebHistory('/officer/'),
  routes: [
    { path: '/', redirect: '/report' },
    { path: '/signin', component: SignIn, meta: { public: true } },
    { path: '/report', component: ReportView },
    { path: '/outbox', component: OutboxView },
    // The day's map and cases load when opened: the report form paints first.
    { path: '/day', component: () => import('./views/DayView.vue') },
    { path: '/case/:id', component: () => import('./views/CaseView.vue'), props: true },
    { path: '/alert/:id', component: () => import('./views/AlertView.vue'), props: true },
  ],
})

router.beforeEach((to) => (!to.meta.public && !state.me ? { path: '/signin' } : true))

onUnauthorized(() => {
  signedOut()
  router.push('/signin')
})

async function start() {
  document.documentElement.lang = i18n.global.locale.value
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/officer/sw.js', { scope: '/officer/' }).catch(() => {})
  }
  // Signed in before (the phone remembers): the app opens at once, offline too, and the session
  // is checked behind it. Otherwise ask the server first (a session cookie may be there). The
  // catalogue is asked for at the same time: on a slow link each round trip is half a second.
  const remembered = !!state.me
  const checked = Promise.all([loadConfig(), refreshSession()])
  const reference = loadReference().catch(() => {})
  if (!remembered) await checked
  createApp(App).use(i18n).use(router).mount('#app')
  await checked
  if (state.me) {
    await reference
    if (!state.categories.length) await loadReference().catch(() => {})  // it was asked before the session
    startOutbox()
    resumeDuty()
  }
  // The report form can be filled: what `make bench` times on a throttled link.
  performance.mark('gridbus-officer-interactive')
  window.__officerReady = true
  // Alerts after the form is ready (not in the way of the first load); the stream is then held
  // while an officer is signed in, from whichever sign-in.
  watchAlerts()
}

start()
