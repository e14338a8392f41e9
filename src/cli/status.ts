// `weft status`: every instance with the config version it runs and whether that is the daemon's
// (SYNCED), behind it (STALE), refused (NACKED, with the instance's error) or not watching
// (DISCONNECTED), watching another daemon that shares the store (ELSEWHERE, with that daemon's URL:
// its sync state is known there), and when the daemon last heard from it; like `istioctl proxy-status`.
// An instance that keeps an inbound policy the daemon dropped without deleting it (RELIABILITY F5)
// is marked "KEEPS n" in STATE, and the kept resources are listed under the table.
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'
import { instanceAddress, type InstanceView } from './get.js'
import { printable } from '../util/printable.js'
import { ago, render, serviceName, table } from './table.js'
import { revocationTable } from './revoke.js'
import type { RevocationView } from '../daemon/revocations.js'

export interface StatusView extends InstanceView {
  state: 'SYNCED' | 'STALE' | 'NACKED' | 'DISCONNECTED' | 'ELSEWHERE' | string
  ackedVersion?: number | null
  sentVersion?: number | null
  nack?: { version: number; error: string }
  lastSeen?: string | number
  /** ELSEWHERE: the daemon its watch stream is on (ask that one for its sync state). */
  daemon?: string
  /** How its last watch stream came: mtls (its certificate) or plaintext (a token). */
  control?: string
  /** Inbound policies it keeps although the daemon's view dropped them without a DELETE. */
  keptDeleted?: string[]
}

export async function status(argv: readonly string[]): Promise<number> {
  const args = parseArgs('status', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG })
  if (args.positional.length > 0) throw new UsageError(`weft status: unexpected argument ${args.positional[0]}`)
  const format = outputFormat('status', args)
  return withClient(args, async (client) => {
    const answer = await client.call<{ version: number; instances: StatusView[]; revocations?: RevocationView[] }>('GET', '/v1/status')
    process.stdout.write(render(format, answer, () => statusTable(answer.version, answer.instances, answer.revocations)))
    return 0
  })
}

/** The `weft status` table (also printed by the demo). */
export function statusTable(version: number, list: StatusView[], revoked: readonly RevocationView[] = []): string {
  let out = `daemon version ${version}\n`
  const revokedNote = revoked.length === 0 ? '' : `\nrevoked identities (weft unrevoke lifts one):\n${revocationTable(revoked)}`
  if (list.length === 0) return out + 'no instances registered\n' + revokedNote
  const isRevoked = new Set(revoked.map((r) => `${r.namespace}/${r.service}`))
  const now = Date.now()
  out += table(['INSTANCE', 'SERVICE', 'ADDRESS', 'VERSION', 'STATE', 'CONTROL', 'LAST SEEN'], list.map((i) => [
    i.id,
    serviceName(i.service, i.namespace),
    instanceAddress(i),
    versionCell(i),
    isRevoked.has(`${i.namespace || 'default'}/${i.service}`) ? `${stateCell(i)}, REVOKED` : stateCell(i),
    // How its watch stream here came: mTLS with its certificate, or plaintext with a token.
    i.control ?? '-',
    ago(i.lastSeen, now),
  ]))
  for (const i of list) {
    if (!i.nack) continue
    // The error is the instance's text: printable() in case the daemon did not clean it.
    out += `\n${i.id} NACKED version ${i.nack.version}:\n${printable(i.nack.error).split('\n').map((l) => `  ${l}`).join('\n')}\n`
  }
  for (const i of list) {
    if (!i.keptDeleted?.length) continue
    out += `\n${i.id} keeps what the daemon's view dropped without a DELETE (a daemon or store fault; weft apply it again, and to remove it, apply it and then weft delete it):\n${i.keptDeleted.map((k) => `  ${printable(k)}`).join('\n')}\n`
  }
  return out + revokedNote
}

function stateCell(i: StatusView): string {
  const state = i.state === 'NACKED' && i.nack ? `NACKED (version ${i.nack.version})` : i.state === 'ELSEWHERE' && i.daemon ? `ELSEWHERE (${i.daemon})` : i.state
  return i.keptDeleted?.length ? `${state}, KEEPS ${i.keptDeleted.length}` : state
}

/** The version the instance applied; "(sent N)" when a newer one is on its way. */
function versionCell(i: StatusView): string {
  const acked = i.ackedVersion ?? undefined
  const sent = i.sentVersion ?? undefined
  const base = acked === undefined ? '-' : String(acked)
  return sent !== undefined && sent !== acked ? `${base} (sent ${sent})` : base
}
