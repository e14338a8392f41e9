// RED metrics and Weft's own counters on a per-mesh prom-client Registry. Label values come from
// config (service, route names) and bounded sets (methods, statuses, codes), never raw paths.
// Children are cached per target so the hot path does one Map lookup, not a label hash.
import { Counter, Gauge, Registry } from 'prom-client'
import { FastHistogram } from './fast-histogram.js'
import { RpcHistograms, RpcObserver, type RpcTargetMetrics } from './rpc-metrics.js'

/** OTel's HTTP duration buckets, plus finer ones below 5 ms for an in-process mesh. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
export const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT'])

export class MeshMetrics {
  readonly clientDuration: FastHistogram
  readonly serverDuration: FastHistogram
  readonly retries: Counter<string>
  readonly budgetExhausted: Counter<string>
  readonly circuitState: Gauge<string>
  readonly ejections: Counter<string>
  readonly configVersion: Gauge<string>
  readonly controlConnected: Gauge<string>
  readonly mtlsRefused: Counter<string>
  readonly authzDenied: Counter<string>
  readonly authzAudit: Counter<string>
  readonly authnInvalid: Counter<string>
  readonly certificateExpiry: Gauge<string>
  readonly caExpiry: Gauge<string>
  readonly configRejected: Counter<string>
  readonly configSource: Gauge<string>
  readonly mirrors: Counter<string>

  constructor(readonly registry: Registry, readonly source: string) {
    this.clientDuration = new FastHistogram({
      name: 'http_client_request_duration_seconds',
      help: 'Duration of outbound HTTP requests through the mesh, as the application sees them (all attempts).',
      labelNames: ['method', 'status_code', 'route', 'source_service', 'destination_service', 'error_code'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    })
    this.serverDuration = new FastHistogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of inbound HTTP requests served by this instance, from arrival to the end of the response.',
      labelNames: ['method', 'status_code', 'http_route', 'source_service', 'destination_service', 'error_code'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    })
    this.retries = new Counter({
      name: 'weft_retries_total',
      help: 'Retries made by the mesh, by reason.',
      labelNames: ['source_service', 'destination_service', 'route', 'reason'],
      registers: [registry],
    })
    this.budgetExhausted = new Counter({
      name: 'weft_retry_budget_exhausted_total',
      help: 'Retries refused because the retry budget was spent.',
      labelNames: ['source_service', 'destination_service'],
      registers: [registry],
    })
    this.circuitState = new Gauge({
      name: 'weft_circuit_state',
      help: 'Circuit breaker state per destination: 0 closed, 1 open, 2 half-open.',
      labelNames: ['source_service', 'destination_service'],
      registers: [registry],
    })
    this.ejections = new Counter({
      name: 'weft_endpoint_ejections_total',
      help: 'Endpoints ejected by outlier detection.',
      labelNames: ['source_service', 'destination_service', 'endpoint'],
      registers: [registry],
    })
    this.configVersion = new Gauge({
      name: 'weft_config_version',
      help: 'The config version this instance is serving.',
      labelNames: ['source_service'],
      registers: [registry],
    })
    this.controlConnected = new Gauge({
      name: 'weft_control_connected',
      help: '1 while this instance holds a watch stream to a control daemon, 0 otherwise (it serves its last good config).',
      labelNames: ['source_service'],
      registers: [registry],
    })
    this.mtlsRefused = new Counter({
      name: 'weft_mtls_connections_refused_total',
      help: 'Inbound connections the mTLS front door refused or ended, by reason (plaintext in STRICT, handshake, peer-identity, no-certificate, timeout, revoked; ended: expired, untrusted, mode-strict, revoked).',
      labelNames: ['source_service', 'reason'],
      registers: [registry],
    })
    this.authzDenied = new Counter({
      name: 'weft_authz_denied_total',
      help: 'Inbound requests an AuthorizationPolicy denied, by the deciding policy (or the reason when none decided: default-deny, path-invalid).',
      labelNames: ['destination_service', 'policy'],
      registers: [registry],
    })
    this.authzAudit = new Counter({
      name: 'weft_authz_audit_total',
      help: 'Inbound requests an AUDIT AuthorizationPolicy matched (reported, never denied).',
      labelNames: ['destination_service', 'policy'],
      registers: [registry],
    })
    this.authnInvalid = new Counter({
      name: 'weft_authn_rejected_total',
      help: 'Inbound requests refused 401 because their end-user JWT failed verification (RequestAuthentication), by the check that failed.',
      labelNames: ['destination_service', 'reason'],
      registers: [registry],
    })
    this.certificateExpiry = new Gauge({
      name: 'weft_certificate_expiry_timestamp_seconds',
      help: 'When this instance\'s X509-SVID expires (Unix seconds); 0 while it has none. Alert when it nears now (RELIABILITY M11).',
      labelNames: ['source_service'],
      registers: [registry],
    })
    this.caExpiry = new Gauge({
      name: 'weft_ca_expiry_timestamp_seconds',
      help: 'The earliest expiry (Unix seconds) among the CA certificates this instance relies on: its SVID\'s issuers and the trust bundle\'s roots; 0 while it has none. Alert well before it (RELIABILITY M11).',
      labelNames: ['source_service'],
      registers: [registry],
    })
    this.configRejected = new Counter({
      name: 'weft_config_rejected_total',
      help: 'Config this instance refused (and kept serving the previous one): source="daemon" a daemon view NACKed, "file" a config file change that does not validate, "deletion" an AuthorizationPolicy or RequestAuthentication the daemon\'s view dropped without deleting it (kept, or inbound refused with failOnDataErrors; once per resource).',
      labelNames: ['source_service', 'source'],
      registers: [registry],
    })
    this.mirrors = new Counter({
      name: 'weft_mirror_requests_total',
      help: 'Copies of outbound requests a Route rule\'s mirror sent (result="sent"; their answers are in http_client_request_duration_seconds under route "<rule>.mirror") or did not send: skipped_body (a streamed request body, which is not buffered to be sent twice), skipped_limit (the mirror service\'s concurrencyLimit of copies already in flight), skipped_upgrade (a WebSocket or other upgrade request: a copy would open a second session).',
      labelNames: ['source_service', 'destination_service', 'route', 'result'],
      registers: [registry],
    })
    this.configSource = new Gauge({
      name: 'weft_config_source',
      help: 'Where the config in use came from: 1 for the current source (daemon, cache: the stateDir snapshot with the daemon unreachable, static: the config option, none), 0 for the others.',
      labelNames: ['source_service', 'source'],
      registers: [registry],
    })
  }

  forTarget(destination: string, route: string): TargetMetrics {
    return new TargetMetrics(this, destination, route)
  }

  private rpcHistograms: RpcHistograms | undefined
  private readonly rpcTargets = new Map<string, RpcTargetMetrics>()
  private readonly rpcServers = new Map<string, RpcObserver>()

  /** The rpc_* histograms if gRPC was used (reading them must not register them). */
  get rpcIfUsed(): RpcHistograms | undefined {
    return this.rpcHistograms
  }

  /** The rpc_* histograms, registered on first gRPC use. */
  get rpc(): RpcHistograms {
    return (this.rpcHistograms ??= new RpcHistograms(this))
  }

  /** rpc_client_duration_seconds for calls from this mesh to `destination`. */
  forRpcTarget(destination: string): RpcTargetMetrics {
    let m = this.rpcTargets.get(destination)
    if (!m) this.rpcTargets.set(destination, (m = new RpcObserver(this.rpc.client, this.source, destination)))
    return m
  }

  /** rpc_server_duration_seconds for calls to this mesh from `source` (a bounded label). */
  rpcServerFrom(source: string): RpcObserver {
    let m = this.rpcServers.get(source)
    if (!m) this.rpcServers.set(source, (m = new RpcObserver(this.rpc.server, source, this.source)))
    return m
  }
}

type Observer = { observe(v: number): void }

export class TargetMetrics {
  private readonly children = new Map<string, Observer>()
  private readonly retryChildren = new Map<string, { inc(): void }>()

  constructor(
    private readonly m: MeshMetrics,
    readonly destination: string,
    readonly route: string,
  ) {}

  // The label set of the last observation: nearly every call repeats it, and checking three
  // values is cheaper than building and hashing a key string.
  private lastMethod = ''
  private lastStatus = -1
  private lastCode = ''
  private lastChild: Observer | undefined

  /** weft_mirror_requests_total for this rule's copies to `mirrorService`, children made once. */
  mirrorCounter(mirrorService: string): (result: 'sent' | 'skipped_body' | 'skipped_limit' | 'skipped_upgrade') => void {
    const labels = { source_service: this.m.source, destination_service: mirrorService, route: this.route }
    const sent = this.m.mirrors.labels({ ...labels, result: 'sent' })
    return (result) => (result === 'sent' ? sent.inc() : this.m.mirrors.labels({ ...labels, result }).inc())
  }

  observe(method: string, status: number, errorCode: string, seconds: number): void {
    if (status === this.lastStatus && method === this.lastMethod && errorCode === this.lastCode) {
      this.lastChild!.observe(seconds)
      return
    }
    const key = `${method} ${status} ${errorCode}`
    let child = this.children.get(key)
    if (!child) {
      if (this.children.size > 512) this.children.clear() // bounded even if something unexpected varies
      child = this.m.clientDuration.labels({
        method: KNOWN_METHODS.has(method) ? method : '_OTHER',
        status_code: String(status),
        route: this.route,
        source_service: this.m.source,
        destination_service: this.destination,
        error_code: errorCode,
      })
      this.children.set(key, child)
    }
    this.lastMethod = method
    this.lastStatus = status
    this.lastCode = errorCode
    this.lastChild = child
    child.observe(seconds)
  }

  retry(reason: string): void {
    let child = this.retryChildren.get(reason)
    if (!child) {
      child = this.m.retries.labels({ source_service: this.m.source, destination_service: this.destination, route: this.route, reason })
      this.retryChildren.set(reason, child)
    }
    child.inc()
  }

  budgetExhausted(): void {
    this.m.budgetExhausted.inc({ source_service: this.m.source, destination_service: this.destination })
  }
}
