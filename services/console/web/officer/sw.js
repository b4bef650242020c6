// The officer's app's service worker: the app opens with no network. Its files (listed at build
// time) are cached when it installs; the page itself is fetched fresh when the network answers
// and taken from the cache when it does not; the hashed scripts and styles never change, so they
// come from the cache first; the grid map's tiles the officer has seen stay for offline use.
// Nothing of the API is cached here: reports wait in the page's own outbox (IndexedDB).
const VERSION = '__VERSION__'
const PRECACHE = __PRECACHE__
const APP = `gridbus-officer-${VERSION}`
const TILES = 'gridbus-officer-tiles'
const SHELL = '/officer/'

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(APP).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()))
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('gridbus-officer-') && name !== APP && name !== TILES) await caches.delete(name)
    }
    await self.clients.claim()
  })())
})

async function networkFirst(request, cacheName, fallback) {
  const cache = await caches.open(cacheName)
  try {
    const response = await fetch(request)
    if (response.ok) cache.put(fallback || request, response.clone())
    return response
  } catch (e) {
    const cached = await cache.match(fallback || request)
    if (cached) return cached
    throw e
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request)
  if (cached) return cached
  const response = await fetch(request)
  if (response.ok) (await caches.open(APP)).put(request, response.clone())
  return response
}

self.addEventListener('fetch', (event) => {
  const request = event.request
  const url = new URL(request.url)
  if (request.method !== 'GET' || url.origin !== self.location.origin) return
  if (request.mode === 'navigate' && url.pathname.startsWith('/officer')) {
    event.respondWith(networkFirst(request, APP, SHELL))  // every route of the app is the same page
  } else if (url.pathname.startsWith('/assets/') || PRECACHE.includes(url.pathname)) {
    event.respondWith(cacheFirst(request))
  } else if (url.pathname.startsWith('/api/tiles/')) {
    event.respondWith(networkFirst(request, TILES))
  }
})
