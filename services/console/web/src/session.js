// What happens when a member signs in and out.
import { connectLive, disconnectLive } from './live.js'
import { loadReference, signOut } from './store.js'

// The reference lists (categories, departments) name things on every page, but no page waits
// for them to draw: they arrive while the map loads.
export function afterSignIn() {
  connectLive()
  loadReference().catch(() => {})
}

export async function leave() {
  disconnectLive()
  await signOut()
}
