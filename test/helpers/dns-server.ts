// A real DNS server (dns2, UDP) on 127.0.0.1 for discovery tests: records the test can change at
// run time, a failure mode (SERVFAIL, NXDOMAIN or no answer at all), and a count of the queries it
// received per name and type.
import dns2 from 'dns2'
import type { AddressInfo } from 'node:net'

const { Packet } = dns2
/** Response codes (dns2 has Packet.RCODE at run time, but its type declarations lack it). */
const RCODE = { SERVFAIL: 2, NXDOMAIN: 3 } as const

export type RecordType = 'A' | 'AAAA' | 'SRV'
export interface AddressRecord { address: string; ttl?: number }
export interface SrvRecord { target: string; port: number; priority?: number; weight?: number; ttl?: number }
/** How the server answers: normally, SERVFAIL or NXDOMAIN for every query, or not at all. */
export type DnsMode = 'answer' | 'servfail' | 'nxdomain' | 'drop'

export interface TestDnsServer {
  port: number
  /** "127.0.0.1:PORT", for dns.servers / dnsServers. */
  address: string
  /** How every query is answered; `failName` overrides it for one name. */
  mode: DnsMode
  /** Answers queries for one name in `mode` (undefined: back to the server-wide mode). */
  failName(name: string, mode: DnsMode | undefined): void
  /** Replaces the A records of a name ([] leaves the name existing with no A records). */
  setA(name: string, records: (string | AddressRecord)[], ttl?: number): void
  setAAAA(name: string, records: (string | AddressRecord)[], ttl?: number): void
  setSrv(name: string, records: SrvRecord[], ttl?: number): void
  /** Forgets every record of a name (queries for it then get NXDOMAIN). */
  remove(name: string): void
  /** Queries received for name and type (any mode, answered or not). */
  queries(name: string, type: RecordType): number
  close(): Promise<void>
}

const DEFAULT_TTL = 300
const norm = (name: string) => name.toLowerCase().replace(/\.$/, '')

export async function startDnsServer(): Promise<TestDnsServer> {
  const zone = new Map<string, Partial<Record<RecordType, object[]>>>()
  const counts = new Map<string, number>()
  const nameModes = new Map<string, DnsMode>()
  const typeName = new Map<number, RecordType>([[Packet.TYPE.A, 'A'], [Packet.TYPE.AAAA, 'AAAA'], [Packet.TYPE.SRV, 'SRV']])

  const server = dns2.createUDPServer({ type: 'udp4' })
  server.on('request', (request, send) => {
    const response = Packet.createResponseFromRequest(request)
    response.header.aa = 1
    const [q] = request.questions
    if (!q) return
    const name = norm(q.name)
    const type = typeName.get(q.type)
    const key = `${name}/${type ?? q.type}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
    const mode = nameModes.get(name) ?? api.mode
    if (mode === 'drop') return
    if (mode === 'servfail') response.header.rcode = RCODE.SERVFAIL
    else if (mode === 'nxdomain' || !zone.has(name)) response.header.rcode = RCODE.NXDOMAIN
    else for (const r of (type && zone.get(name)![type]) || []) response.answers.push({ name: q.name, class: Packet.CLASS.IN, ...r } as never)
    void send(response).catch(() => {})
  })
  server.on('requestError', () => {})
  server.on('error', () => {})
  await server.listen(0, '127.0.0.1')
  const port = (server.address() as AddressInfo).port

  const set = (name: string, type: RecordType, records: object[]) => {
    const n = norm(name)
    zone.set(n, { ...zone.get(n), [type]: records })
  }
  const addresses = (type: RecordType, records: (string | AddressRecord)[], ttl: number) =>
    records.map((r) => {
      const rec = typeof r === 'string' ? { address: r } : r
      return { type: Packet.TYPE[type], address: rec.address, ttl: rec.ttl ?? ttl }
    })

  const api: TestDnsServer = {
    port,
    address: `127.0.0.1:${port}`,
    mode: 'answer',
    failName: (name, mode) => void (mode ? nameModes.set(norm(name), mode) : nameModes.delete(norm(name))),
    setA: (name, records, ttl = DEFAULT_TTL) => set(name, 'A', addresses('A', records, ttl)),
    setAAAA: (name, records, ttl = DEFAULT_TTL) => set(name, 'AAAA', addresses('AAAA', records, ttl)),
    setSrv: (name, records, ttl = DEFAULT_TTL) =>
      set(name, 'SRV', records.map((r) => ({ type: Packet.TYPE.SRV, priority: r.priority ?? 10, weight: r.weight ?? 10, port: r.port, target: r.target, ttl: r.ttl ?? ttl }))),
    remove: (name) => void zone.delete(norm(name)),
    queries: (name, type) => counts.get(`${norm(name)}/${type}`) ?? 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  return api
}
