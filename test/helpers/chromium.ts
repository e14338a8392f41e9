// A real Chromium for the dashboard's tests (Debian's package, driven by playwright-core, which
// downloads no browser of its own). Missing Chromium is an error naming the package to install,
// never a skip: the suite must not pass without having run these tests.
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

const CANDIDATES = [process.env.WEFT_CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p)

export async function launchChromium(): Promise<Browser> {
  const executablePath = CANDIDATES.find((p) => existsSync(p))
  if (!executablePath) {
    throw new Error(`Chromium not found (looked for ${CANDIDATES.join(', ')}; $WEFT_CHROMIUM_BIN names another): install the Debian package chromium (apt-get install -y chromium), as .ci/run does`)
  }
  // As root (CI containers) Chromium's sandbox cannot start; the pages it opens here are our own, on loopback.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : []
  return chromium.launch({ executablePath, headless: true, args })
}
