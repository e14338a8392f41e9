// HTTP/2 limits of the servers made by mesh.grpc.server() (RELIABILITY B5). What grpc-js 1.14 on
// Node 20.20 does by default, observed on 127.0.0.1 (test/reliability/b5-*.test.ts):
//   - Rapid Reset (HEADERS then RST_STREAM, CVE-2023-44487): nghttp2 ≥ 1.57 (Node ≥ 18.18.2 /
//     20.8.1) rate-limits the resets a client sends; a flood gets its session closed with GOAWAY
//     (INTERNAL_ERROR) after ~1000 resets. Nothing to set: grpc-js leaves it on.
//   - Header count: node:http2's `maxHeaderListPairs` (128, pseudo-headers included): a call with
//     more metadata entries than that is reset (ENHANCE_YOUR_CALM → RESOURCE_EXHAUSTED).
//   - Header bytes: no limit. grpc-js has no metadata-size option and never sends
//     SETTINGS_MAX_HEADER_LIST_SIZE, so node accepts header lists of megabytes (one 8 MiB value left
//     that caller's connection hanging). The mesh sends the setting: node then resets a stream whose
//     header list is larger (RESOURCE_EXHAUSTED on the caller) without keeping it.
import type { Server, ServerOptions } from '@grpc/grpc-js'
import { invalidArg } from '../errors/index.js'

/**
 * The server option for the largest header list (metadata, with HTTP/2's 32 octets a field) a call
 * may send, in bytes. gRPC core's name for it; grpc-js ignores it, the mesh applies it.
 */
export const MAX_METADATA_SIZE_OPTION = 'grpc.max_metadata_size'
/** Weft's default: 64 KiB (RELIABILITY B5). gRPC core's is 8 KiB; grpc-js had none. */
export const DEFAULT_MAX_METADATA_SIZE = 64 * 1024

/** The node:http2 server options grpc-js makes each listener (bound or injector) with: a private field. */
interface Http2OptionsHolder {
  commonServerOptions?: { settings?: Record<string, unknown> }
}

/** The limit in `options` (the default when absent); 0 leaves node's and grpc-js's behaviour (no limit). */
export function maxMetadataSize(options: ServerOptions): number {
  const v: unknown = options[MAX_METADATA_SIZE_OPTION]
  if (v === undefined) return DEFAULT_MAX_METADATA_SIZE
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) invalidArg(`grpc.server(options['${MAX_METADATA_SIZE_OPTION}'])`, `must be an integer number of bytes 0..2^32-1, 0 for no limit (got ${JSON.stringify(v)})`)
  return v
}

/**
 * Sends SETTINGS_MAX_HEADER_LIST_SIZE = `bytes` on every HTTP/2 session of `server` (those it binds
 * and those a connection injector serves). grpc-js has no option for it, so it is added to the
 * node:http2 options grpc-js keeps (the private `commonServerOptions`, present since grpc-js 1.8);
 * call before the server listens. Returns false when that field is not there (the limit is not
 * applied; a grpc-js that changed it is caught by the B5 tests).
 */
export function applyMaxMetadataSize(server: Server, bytes: number): boolean {
  if (bytes === 0) return true
  const common = (server as unknown as Http2OptionsHolder).commonServerOptions
  if (typeof common !== 'object' || common === null) return false
  common.settings = { ...common.settings, maxHeaderListSize: bytes }
  return true
}
