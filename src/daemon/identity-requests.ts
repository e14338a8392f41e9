// Bodies of the daemon's identity calls, checked with messages naming the field (like requests.ts).
import { badRequest } from './http-error.js'

/** A CSR in PEM is a few hundred bytes; anything near this is not one. */
const MAX_CSR_CHARS = 16_384

export function parseSvidRequest(body: Record<string, unknown>): { csr: string } {
  for (const k of Object.keys(body)) if (k !== 'csr') throw badRequest(`svid: unknown field "${k}" (allowed: csr)`)
  const csr = body.csr
  if (typeof csr !== 'string' || !csr.includes('-----BEGIN CERTIFICATE REQUEST-----')) throw badRequest('svid: csr must be a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)')
  if (csr.length > MAX_CSR_CHARS) throw badRequest(`svid: csr is longer than ${MAX_CSR_CHARS} characters`)
  return { csr }
}
