// nginx configurations for the sidecar bench (bench/sidecar.ts): the client's sidecar (plaintext
// in, mTLS out) and the server's sidecar (mTLS in, plaintext to the app), tuned as a careful
// operator would tune them for this shape: one worker, no access log, keep-alive pools both ways.

/** Files a sidecar reads; absolute paths inside the bench's temp dir. */
export interface SidecarCerts {
  /** This sidecar's certificate chain (leaf first) and its key. */
  certFile: string
  keyFile: string
  /** The trust bundle's roots: the peer's certificate must chain to one of them. */
  rootsFile: string
}

/**
 * Kept idle per worker: above the bench's 32 requests in flight, so under a closed loop every
 * upstream connection stays pooled and the mTLS hop between the sidecars never handshakes again
 * after warm-up.
 */
const KEEPALIVE = 64
/**
 * nginx closes a keep-alive connection after `keepalive_requests` requests (1,000 by default since
 * 1.19.10, both ways); a bench of 10^5 requests would then re-handshake mTLS every few hundred ms,
 * which a sidecar mesh (Envoy, linkerd2-proxy) does not do. Raised so nginx is not penalised.
 */
const MAX_REQUESTS = 10_000_000

/**
 * What every instance shares: foreground, one worker, logs and temp files inside `dir`. Room for
 * 10k connections: when a stalled machine lets requests pile up, the clients open a connection per
 * request in flight, and a worker out of connections closes idle keep-alive ones under the client.
 * The error log at `info` names every connection nginx closes, for a failed run's message.
 */
function head(dir: string): string {
  return `daemon off;
worker_processes 1;
worker_rlimit_nofile 20480;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events {
  worker_connections 10240;
}
`
}

/** http-level settings shared by both sidecars. */
function httpCommon(dir: string): string {
  return `  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_timeout 75s;
  keepalive_requests ${MAX_REQUESTS};
`
}

/** Reuse upstream connections: HTTP/1.1 and no `Connection: close` passed on. */
const POOLED = `      proxy_http_version 1.1;
      proxy_set_header Connection "";`

/**
 * The client's sidecar (nginx A): plaintext HTTP on 127.0.0.1:`port` from the app, mTLS to the
 * server's sidecar at 127.0.0.1:`peerPort` with its own certificate, verifying the peer's chain
 * against the bundle and its name: the daemon's CA writes the service name as the leaf's CN and
 * only a URI SAN, so OpenSSL's host check (no DNS SAN present) matches `peerName` against the CN;
 * nginx cannot check a URI SAN (the SPIFFE ID) itself.
 */
export function clientSidecarConf(dir: string, port: number, peerPort: number, peerName: string, certs: SidecarCerts): string {
  return `${head(dir)}http {
${httpCommon(dir)}
  upstream peer_sidecar {
    server 127.0.0.1:${peerPort};
    keepalive ${KEEPALIVE};
    keepalive_requests ${MAX_REQUESTS};
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass https://peer_sidecar;
${POOLED}
      proxy_ssl_certificate ${certs.certFile};
      proxy_ssl_certificate_key ${certs.keyFile};
      proxy_ssl_trusted_certificate ${certs.rootsFile};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 3;
      proxy_ssl_name ${peerName};
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }
}
`
}

/** Where the server's sidecar serves its stub_status counters. */
export function statusSocket(dir: string): string {
  return `${dir}/status.sock`
}

/**
 * The server's sidecar (nginx B): mTLS on 127.0.0.1:`port` — its own certificate, and a client
 * certificate required and verified against the bundle (`ssl_verify_client on`) — then plaintext
 * HTTP to the app at 127.0.0.1:`appPort`; its stub_status on a unix socket in `dir`.
 */
export function serverSidecarConf(dir: string, port: number, appPort: number, certs: SidecarCerts): string {
  return `${head(dir)}http {
${httpCommon(dir)}
  upstream app {
    server 127.0.0.1:${appPort};
    keepalive ${KEEPALIVE};
    keepalive_requests ${MAX_REQUESTS};
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${certs.certFile};
    ssl_certificate_key ${certs.keyFile};
    ssl_client_certificate ${certs.rootsFile};
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
${POOLED}
    }
  }
  # Its counters (accepted connections: each an mTLS handshake from A), for the bench only.
  server {
    listen unix:${statusSocket(dir)};
    location / {
      stub_status;
    }
  }
}
`
}
