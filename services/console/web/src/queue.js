// The work queue as the list and the map fetch it: the shared filter (kept in the address),
// refetched when it changes and, a moment after, when a live event says something moved.
import { onBeforeUnmount, ref, watch } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { api } from './api.js'
import { onLive } from './live.js'
import { filterFromQuery, filterQuery, setFilter, state, toastError } from './store.js'

const LIVE_DEBOUNCE_MS = 250

export function useFilterInAddress() {
  const route = useRoute()
  const router = useRouter()
  setFilter(filterFromQuery(route.query))
  watch(() => filterQuery(), (q) => {
    const query = Object.fromEntries(Object.entries(q).filter(([, v]) => v))
    router.replace({ query: { ...query, case: route.query.case } })
  }, { deep: true })
}

export function useQueue(extra = () => ({})) {
  const rows = ref([])
  const more = ref(false)
  const loading = ref(false)
  const error = ref(null)
  let pending = null
  let seq = 0

  async function load() {
    const mine = ++seq
    loading.value = true
    try {
      const answer = await api('/api/incidents', { query: { ...filterQuery(), ...extra() } })
      if (mine !== seq) return
      rows.value = answer.rows
      more.value = answer.more
      error.value = null
    } catch (e) {
      if (mine !== seq) return
      error.value = e
      if (e.status !== 401) toastError(e)
    } finally {
      if (mine === seq) loading.value = false
    }
  }

  function soon() {
    clearTimeout(pending)
    pending = setTimeout(load, LIVE_DEBOUNCE_MS)
  }

  watch(() => filterQuery(), load, { deep: true })
  const off = onLive((m) => { if (m.kind === 'incident' || m.kind === 'task') soon() })
  onBeforeUnmount(() => { off(); clearTimeout(pending) })
  return { rows, more, loading, error, load, soon }
}
