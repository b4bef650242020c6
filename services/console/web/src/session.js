// What happens when a member signs in and out.
import { connectLive, disconnectLive } from './live.js'
import { loadReference, signOut } from './store.js'

export async function afterSignIn() {
  connectLive()
  await loadReference()
}

export async function leave() {
  disconnectLive()
  await signOut()
}
