// Builds the console's page and the officer's app into dist/, which the console serves (make web).
// The officer's app gets its service worker from officer/sw.js with the list of files it needs
// offline written in (every script and style the app's entry reaches, lazy ones included).
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

function officerServiceWorker() {
  return {
    name: 'gridbus-officer-sw',
    apply: 'build',
    enforce: 'post',
    generateBundle(_, bundle) {
      const chunks = Object.values(bundle).filter((c) => c.type === 'chunk')
      const entry = chunks.find((c) => c.isEntry && (c.facadeModuleId || '').endsWith('officer.html'))
      if (!entry) return
      const byName = Object.fromEntries(chunks.map((c) => [c.fileName, c]))
      const files = new Set()
      const visit = (name) => {
        if (files.has(name) || !byName[name]) return
        files.add(name)
        const c = byName[name]
        for (const css of c.viteMetadata?.importedCss || []) files.add(css)
        for (const asset of c.viteMetadata?.importedAssets || []) files.add(asset)
        ;[...c.imports, ...c.dynamicImports].forEach(visit)
      }
      visit(entry.fileName)
      const precache = ['/officer/', '/officer/manifest.webmanifest', '/officer/icon-192.png',
        ...[...files].sort().map((f) => `/${f}`)]
      const version = createHash('sha256').update(precache.join('\n')).digest('hex').slice(0, 12)
      const source = readFileSync(resolve(__dirname, 'officer/sw.js'), 'utf8')
        .replace('__VERSION__', version).replace('__PRECACHE__', JSON.stringify(precache, null, 2))
      this.emitFile({ type: 'asset', fileName: 'officer/sw.js', source })
    },
  }
}

export default defineConfig({
  plugins: [vue(), officerServiceWorker()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      input: { console: resolve(__dirname, 'index.html'), officer: resolve(__dirname, 'officer.html') },
    },
  },
  // `npx vite` for working on the pages against a console running on :8080.
  server: { proxy: { '/api': 'http://127.0.0.1:8080', '/attachments': 'http://127.0.0.1:8080' } },
})
