// Preload for a child process: makes etcd3 look uninstalled (require throws MODULE_NOT_FOUND), so
// a test can check that weft works without this optional peer and names it when --etcd needs it.
const Module = require('node:module')
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (request === 'etcd3' || request.startsWith('etcd3/')) {
    throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' })
  }
  return resolve.call(this, request, ...rest)
}
