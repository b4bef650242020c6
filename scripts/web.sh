#!/usr/bin/env bash
# Builds the console's page (services/console/web) from the pinned packages in its lock file.
set -euo pipefail
cd "$(dirname "$0")/../services/console/web"
if ! command -v npm >/dev/null 2>&1; then
  echo "the console's page needs Node.js 20.19 or newer and npm (e.g. apt-get install nodejs npm, or nodejs.org)" >&2
  exit 1
fi
node -e 'const [a, b] = process.versions.node.split(".").map(Number); if (a < 20 || (a === 20 && b < 19)) { console.error(`Node.js ${process.versions.node} is too old: the console needs 20.19 or newer`); process.exit(1) }'
if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.installed
fi
npm run build --silent
