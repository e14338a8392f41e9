// Workload keys (ECDSA P-256 on node's WebCrypto), their PEM forms for node:tls, and the PKCS#10
// CSR an instance sends the CA.
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto'
import { WeftError } from '../errors/index.js'
import { parseSpiffeId, type SpiffeId } from './spiffe-id.js'
import { EC_P256, x509 } from './x509.js'

/** A key pair with its PEM forms (exported once, at creation: node:tls takes PEM). */
export interface KeyPairPem {
  readonly privateKey: webcrypto.CryptoKey
  readonly publicKey: webcrypto.CryptoKey
  /** PKCS#8 `PRIVATE KEY` PEM, as `tls.createSecureContext({ key })` takes it. */
  readonly privateKeyPem: string
  /** SPKI `PUBLIC KEY` PEM. */
  readonly publicKeyPem: string
}

const { subtle } = webcrypto

/**
 * Makes a new ECDSA P-256 key pair. The private key is extractable only so that node:tls can load
 * it as PEM; it is never written anywhere by this module.
 */
export async function generateKeyPair(): Promise<KeyPairPem> {
  const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
  return withPem(pair.privateKey, pair.publicKey)
}

/**
 * Loads an operator-supplied P-256 private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY` PEM).
 * @throws WeftError WEFT_ERR_INVALID_ARG when it is not PEM, encrypted, or not a P-256 EC key.
 */
export async function importPrivateKeyPem(pem: string): Promise<KeyPairPem> {
  let key
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid private key: not an unencrypted PEM private key (${(err as Error).message})`, { cause: err })
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const got = key.asymmetricKeyType === 'ec' ? `EC ${key.asymmetricKeyDetails?.namedCurve}` : key.asymmetricKeyType
    throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid private key: Weft uses ECDSA P-256 keys, got ${got}`)
  }
  const privateKey = await subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign'])
  const publicKey = await subtle.importKey('spki', createPublicKey(key).export({ type: 'spki', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify'])
  return withPem(privateKey, publicKey)
}

/**
 * A PKCS#10 CSR for `id`, signed with `keys` (proof of possession): one URI SAN, empty subject.
 * The CA decides the identity; the SAN only lets it refuse a request for the wrong one.
 * @example const csrPem = await createCsr(await generateKeyPair(), 'spiffe://weft.local/ns/default/sa/payments')
 */
export async function createCsr(keys: Pick<KeyPairPem, 'privateKey' | 'publicKey'>, id: SpiffeId | string): Promise<string> {
  const parsed = typeof id === 'string' ? parseSpiffeId(id) : id
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: parsed.toString() }])],
  })
  return csr.toString('pem')
}

async function withPem(privateKey: webcrypto.CryptoKey, publicKey: webcrypto.CryptoKey): Promise<KeyPairPem> {
  const [pkcs8, spki] = await Promise.all([subtle.exportKey('pkcs8', privateKey), subtle.exportKey('spki', publicKey)])
  return Object.freeze({
    privateKey,
    publicKey,
    privateKeyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
    publicKeyPem: `${x509.PemConverter.encode(spki, 'PUBLIC KEY')}\n`,
  })
}
