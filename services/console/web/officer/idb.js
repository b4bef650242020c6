// A small promise wrapper over IndexedDB: one database, one store of reports keyed by report_id.
// Photos are kept as Blobs inside the records, so a closed app or a restarted phone loses nothing.
const DB = 'gridbus-officer'
const STORE = 'outbox'
let opening = null

function open() {
  opening = opening || new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'report_id' })
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
  return opening
}

async function run(mode, fn) {
  const db = await open()
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode)
    const req = fn(tx.objectStore(STORE))
    tx.oncomplete = () => resolve(req?.result)
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error)
  })
}

export const outboxStore = {
  all: () => run('readonly', (s) => s.getAll()),
  put: (record) => run('readwrite', (s) => s.put(record)),
  remove: (reportId) => run('readwrite', (s) => s.delete(reportId)),
}
