/**
 * The dashboard's build (src/ui -> dist/ui), served by the server at /ui/ (src/plugins/dashboard.ts).
 * Everything is bundled: no CDN, no external fonts, so it works on an air-gapped network.
 */
import { defineConfig } from 'vite'
import preact from '@preact/preset-vite'

export default defineConfig({
  root: 'src/ui',
  base: '/ui/',
  plugins: [preact()],
  publicDir: false,
  build: {
    outDir: '../../dist/ui',
    emptyOutDir: true,
    // Hashed file names under assets/: the server caches them for a year (immutable).
    assetsDir: 'assets',
    sourcemap: false,
    target: 'es2022'
  },
  server: {
    // `npx vite` for front-end work: API calls go to the server on :8080 (npm run dev).
    proxy: Object.fromEntries(['/auth', '/channels', '/releases', '/deployments', '/audit', '/events', '/docs'].map((p) => [p, 'http://127.0.0.1:8080']))
  }
})
