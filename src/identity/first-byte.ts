// Telling a TLS connection from a plaintext one on a port that serves both (PERMISSIVE mTLS): the
// first byte of a TLS connection is a handshake record (0x16). Shared by the HTTP front door
// (src/http/tls-front-door.ts) and the gRPC listener (src/grpc/front-door.ts).
import type { Socket } from 'node:net'

export const TLS_HANDSHAKE = 0x16

/** A connection that has sent nothing (or not finished its handshake) by then is closed. */
export const FIRST_BYTES_TIMEOUT_MS = 10_000

/**
 * Reads the first chunk, puts it back, and tells its first byte; the socket is left paused with
 * that chunk in its buffer. A socket that closes or errs first is destroyed (`then` never runs);
 * one that sends nothing within FIRST_BYTES_TIMEOUT_MS is told to `onTimeout`, then destroyed.
 */
export function firstByte(socket: Socket, then: (b: number) => void, onTimeout: () => void): void {
  const timer = setTimeout(() => {
    cleanup()
    onTimeout()
    socket.destroy()
  }, FIRST_BYTES_TIMEOUT_MS)
  timer.unref()
  const cleanup = (): void => {
    clearTimeout(timer)
    socket.off('data', onData)
    socket.off('error', onGone)
    socket.off('close', onGone)
  }
  const onGone = (): void => {
    cleanup()
    socket.destroy()
  }
  const onData = (chunk: Buffer): void => {
    cleanup()
    socket.pause()
    socket.unshift(chunk)
    then(chunk[0]!)
  }
  socket.on('data', onData)
  socket.on('error', onGone)
  socket.on('close', onGone)
}

/** `address:port` of the peer, for logs. */
export function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
}
