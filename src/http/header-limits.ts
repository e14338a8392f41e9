// The request header-field limit of servers the mesh fronts (server.ts for requests, upgrade.ts for
// upgrade requests).

/**
 * RELIABILITY B5: a request with more header fields than this is answered 431. Node has no such
 * limit: its parser only stops keeping fields past `server.maxHeadersCount` (2000 when unset) and
 * serves the request without them. Header bytes need nothing here: node's parser answers 431 past
 * `maxHeaderSize` (16 KiB by default) before any listener runs.
 */
export const MAX_REQUEST_HEADERS = 1000

/** The 431 answer's body, the same for requests and upgrade requests. */
export const TOO_MANY_HEADERS_BODY = `more than ${MAX_REQUEST_HEADERS} request header fields\n`
