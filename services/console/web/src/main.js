import { createApp } from 'vue'
import { createRouter, createWebHistory } from 'vue-router'
import 'maplibre-gl/dist/maplibre-gl.css'
import './style.css'
import App from './App.vue'
import { onUnauthorized } from './api.js'
import { i18n } from './i18n/index.js'
import { disconnectLive, onLive } from './live.js'
import { prewarm } from './mapstyle.js'
import { afterSignIn } from './session.js'
import { categoryName, loadConfig, restoreSession, state, toast } from './store.js'
import SignIn from './views/SignIn.vue'
import MapView from './views/MapView.vue'
import QueueView from './views/QueueView.vue'
import CasePage from './views/CasePage.vue'

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/map' },
    { path: '/signin', component: SignIn, meta: { public: true } },
    { path: '/map', component: MapView },
    { path: '/queue', component: QueueView },
    { path: '/case/:id', component: CasePage, props: true },
    // Charts load only when asked for: the map paints first.
    { path: '/figures', component: () => import('./views/FiguresView.vue') },
    { path: '/wall', component: () => import('./views/WallView.vue'), meta: { wall: true } },
  ],
})

router.beforeEach((to) => {
  if (!to.meta.public && !state.me) return { path: '/signin', query: { next: to.fullPath } }
  return true
})

onUnauthorized(() => {
  state.me = null
  disconnectLive()
  router.push({ path: '/signin', query: { next: router.currentRoute.value.fullPath } })
})

// New reports and escalations in the member's area, wherever they are in the console.
onLive((m) => {
  const t = i18n.global.t
  if (m.type === 'incidents.incident.reported') {
    toast('info', t('live.newReport', { category: categoryName(m.category), grid: m.grid_code }))
  } else if (m.type === 'dispatch.task.escalated') {
    toast('warn', t('live.escalated', { grid: m.grid_code }))
  }
})

async function start() {
  document.documentElement.lang = i18n.global.locale.value
  prewarm()  // the map's worker loads while the session is checked
  await loadConfig()
  if (await restoreSession()) afterSignIn()
  createApp(App).use(i18n).use(router).mount('#app')
}

start()
