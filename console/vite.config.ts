import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// The node serves the build at /console/ (gateway.console-dir); scripts/build puts it in
// build/console beside build/bin/sbm, where the node looks by default.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: process.env.SBM_CONSOLE_OUT ?? fileURLToPath(new URL('../build/console', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
