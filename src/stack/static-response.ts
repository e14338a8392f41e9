// A response made by the mesh itself (fault injection), with a JSON error body that carries the
// WEFT_ERR_* code, in the same shape inbound mesh-generated responses use.
import type { BodySink, UpstreamResponse } from './call.js'

export class StaticResponse implements UpstreamResponse {
  readonly rawHeaders: Buffer[]
  private readonly body: Buffer

  constructor(readonly statusCode: number, readonly statusText: string, code: string, message: string) {
    this.body = Buffer.from(JSON.stringify({ error: { code, message } }))
    this.rawHeaders = [
      Buffer.from('content-type'), Buffer.from('application/json'),
      Buffer.from('content-length'), Buffer.from(String(this.body.length)),
      Buffer.from('weft-error-code'), Buffer.from(code),
    ]
  }

  pipe(sink: BodySink): void {
    sink.onData(this.body)
    sink.onComplete([])
  }

  readonly resume = (): void => {}

  discard(): void {}
}
