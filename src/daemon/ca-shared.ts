// The CA on a store several daemons share (etcd; docs/design/identity-plan.md). Each daemon with
// its own CA in its data dir would be a mesh of its own: an instance certified by one would not be
// trusted by instances that hold another's bundle. So the CA's state is one document of the store,
// made by the first daemon and adopted by the others, and changed only by compare-and-set. This
// file holds the format and the start-up rules; CaService keeps the state and follows changes.
import { CertificateAuthority, type CaPem } from '../identity/ca.js'
import { newBundle, parseBundle, type TrustBundle } from '../identity/bundle.js'
import type { Logger } from '../util/logger.js'
import type { SharedDoc } from './store.js'

/** What <dataDir>/ca/ca.json (0600), or the shared store's `ca` document, holds: it has the signing key. */
export interface CaFile {
  trustDomain: string
  /** The CA that signs now. */
  active: CaPem
  /** The CA replaced by the last rotate, kept until retire drops its root. */
  previous?: CaPem
  bundle: TrustBundle
}

export interface CaState {
  active: CertificateAuthority
  previous: CertificateAuthority | undefined
  bundle: TrustBundle
}

/** The store's documents for the CA: the state of a CA made by a daemon, and an operator CA's bundle. */
export interface SharedCaDocs {
  state: SharedDoc
  operatorBundle: SharedDoc
}

/** Attempts at a start-up write before giving up: each lost one means another daemon just wrote. */
const ATTEMPTS = 5

export function caFileOf(s: CaState): CaFile {
  return { trustDomain: s.active.trustDomain, active: s.active.toPem(), ...(s.previous ? { previous: s.previous.toPem() } : {}), bundle: s.bundle }
}

export async function newCaState(trustDomain: string): Promise<CaState> {
  const root = await CertificateAuthority.createRoot({ trustDomain })
  return { active: root, previous: undefined, bundle: newBundle(trustDomain, root.toPem().bundleRoots, 1) }
}

/** The state in a document's text; an error naming `where` when it is not one (never a new CA in its place). */
export async function readCaDoc(text: string, where: string): Promise<CaState> {
  try {
    const v = JSON.parse(text) as Partial<CaFile>
    if (typeof v !== 'object' || v === null || typeof v.trustDomain !== 'string' || typeof v.active !== 'object' || v.active === null) throw new Error('not a CA state { trustDomain, active, previous?, bundle }')
    const bundle = parseBundle(v.bundle)
    if (bundle.trustDomain !== v.trustDomain) throw new Error(`its bundle is for trust domain ${bundle.trustDomain}, not ${v.trustDomain}`)
    const active = await CertificateAuthority.fromPem(v.active)
    if (active.trustDomain !== v.trustDomain) throw new Error(`its CA is for trust domain ${active.trustDomain}, not ${v.trustDomain}`)
    return { active, previous: v.previous ? await CertificateAuthority.fromPem(v.previous) : undefined, bundle }
  } catch (err) {
    throw new Error(`${where} is not readable (${(err as Error).message})`, { cause: err })
  }
}

/**
 * The CA in force on the shared store: the one there, else the one this daemon writes create-only
 * (losing that race, it adopts the winner's). What it writes is its own ca.json when it has one
 * for the trust domain (a daemon that ran with its own CA before keeps its instances' trust), else
 * a new root. A daemon whose former CA is replaced raises the shared bundle's sequence above its
 * former bundle's, so its instances take the shared bundle (they ignore one with a lower sequence).
 */
export async function openSharedCa(doc: SharedDoc, local: CaFile | undefined, trustDomain: string | undefined, logger: Logger): Promise<{ state: CaState; revision: number }> {
  const where = 'the CA in the shared store'
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let cur = await doc.get()
    if (!cur) {
      const td = trustDomain ?? local?.trustDomain ?? 'weft.local'
      const seeded = local?.trustDomain === td
      // Checked before it is shared: an unreadable state in the store would stop every daemon.
      const seed = seeded ? caFileOf(await readCaDoc(JSON.stringify(local), 'ca/ca.json of this data dir')) : caFileOf(await newCaState(td))
      const made = await doc.createIfAbsent(JSON.stringify(seed))
      if (made.created) logger.info(seeded ? `CA: the CA of this daemon's data dir is now the shared store's (trust domain ${td}); every daemon on the store signs with it` : `CA: made a new root for trust domain ${td} in the shared store; every daemon on the store signs with it`)
      cur = made
    }
    const state = await readCaDoc(cur.value, where)
    const td = state.active.trustDomain
    if (trustDomain !== undefined && trustDomain !== td) throw new Error(`${where} is for trust domain ${td}, not ${trustDomain} (a trust domain cannot change under a running mesh; use another etcd prefix for another one)`)
    const mine = local?.trustDomain === td && Number.isSafeInteger(local.bundle?.sequence) && Array.isArray(local.bundle?.roots) ? local.bundle : undefined
    if (!mine || sameRoots(mine.roots, state.bundle.roots) || mine.sequence < state.bundle.sequence) return { state, revision: cur.revision }
    const raised = { ...state, bundle: newBundle(td, state.bundle.roots, mine.sequence + 1) }
    const revision = await doc.compareAndSet(JSON.stringify(caFileOf(raised)), cur.revision)
    if (revision !== undefined) {
      logger.warn(`CA: this daemon's own CA (in its data dir, no longer used) is replaced by the shared store's; bundle sequence raised to ${raised.bundle.sequence} so its instances take the shared bundle`)
      return { state: raised, revision }
    }
  }
  throw new Error(`${where} kept changing while this daemon started (${ATTEMPTS} attempts); start it again`)
}

/**
 * An operator CA's bundle on a shared store: only the roots and the sequence are shared, never the
 * key (it stays in the operator's files, and every daemon is given the same ones). The rule of the
 * file: roots the same as the shared bundle's keep its sequence; other roots get one above every
 * sequence an instance may hold (`others`: this daemon's files, the CA made in the store).
 */
export async function sharedOperatorBundle(docs: SharedCaDocs, roots: readonly string[], trustDomain: string, others: (TrustBundle | undefined)[]): Promise<{ bundle: TrustBundle; same: boolean }> {
  const made = await docs.state.get()
  const known = [...others, made ? bundleIn(made.value) : undefined]
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const cur = await docs.operatorBundle.get()
    const held = cur ? bundleIn(cur.value) : undefined
    const all = [held, ...known].filter((b): b is TrustBundle => b !== undefined && b.trustDomain === trustDomain)
    const same = held !== undefined && held.trustDomain === trustDomain && sameRoots(held.roots, roots)
    const bundle = newBundle(trustDomain, roots, same ? held.sequence : Math.max(0, ...all.map((b) => b.sequence)) + 1)
    if (same) return { bundle, same }
    const text = JSON.stringify({ trustDomain, bundle })
    if (cur ? (await docs.operatorBundle.compareAndSet(text, cur.revision)) !== undefined : (await docs.operatorBundle.createIfAbsent(text)).created) return { bundle, same }
  }
  throw new Error(`the operator CA's bundle in the shared store kept changing while this daemon started (${ATTEMPTS} attempts; daemons given different --ca-bundle files?)`)
}

/** The bundle in a document's text, if it holds a readable one. */
function bundleIn(text: string): TrustBundle | undefined {
  try {
    return parseBundle((JSON.parse(text) as { bundle?: unknown }).bundle)
  } catch {
    return undefined
  }
}

export function sameRoots(a: readonly string[], b: readonly string[]): boolean {
  const norm = (l: readonly string[]) => l.map((p) => p.trim()).sort().join('\n')
  return norm(a) === norm(b)
}
