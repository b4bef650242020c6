// Live updates: one server-sent-event stream per page, only what the member may see.
import { state } from './store.js'

let source = null
const handlers = new Set()
const LOG_SIZE = 1000

export function onLive(fn) {
  handlers.add(fn)
  return () => handlers.delete(fn)
}

export function connectLive() {
  if (source) return
  source = new EventSource('/api/events')
  source.addEventListener('hello', () => { state.live.connected = true })
  source.onerror = () => { state.live.connected = false }
  source.onmessage = (e) => {
    const message = JSON.parse(e.data)
    // When each event arrived, for the end-to-end tests and the benchmark (bounded).
    const log = (window.__gridbusLive ||= [])
    log.push({ id: message.event_id, type: message.type, received: performance.timeOrigin + performance.now() })
    if (log.length > LOG_SIZE) log.splice(0, log.length - LOG_SIZE)
    state.live.last = message
    state.live.count += 1
    handlers.forEach((fn) => fn(message))
  }
}

export function disconnectLive() {
  if (source) source.close()
  source = null
  state.live.connected = false
}
