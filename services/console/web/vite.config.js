// Builds the console's page into dist/, which the console serves (make web).
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  // `npx vite` for working on the page against a console running on :8080.
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
})
