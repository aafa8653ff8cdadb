// Start an in-memory PLC directory and a PDS on 127.0.0.1 for tests.
// Usage: node run.mjs <data-dir> <plc-port> <pds-port>
// Prints one JSON line {"ready": true, "pds": url, "plc": url} when both listen.
import { createRequire } from 'node:module'
import crypto from 'node:crypto'
import fs from 'node:fs'

const require = createRequire(import.meta.url)
const { PlcServer, Database } = require('@did-plc/server')
const pds = await import('@atproto/pds')
const { Secp256k1Keypair } = require('@atproto/crypto')

const [dataDir, plcPort, pdsPort] = process.argv.slice(2)
fs.mkdirSync(dataDir, { recursive: true })

const plc = PlcServer.create({ db: Database.mock(), port: Number(plcPort) })
await plc.start()

const rotation = await Secp256k1Keypair.create({ exportable: true })
const rotationHex = Buffer.from(await rotation.export()).toString('hex')
const env = {
  port: Number(pdsPort),
  hostname: 'localhost',
  devMode: true,
  dataDirectory: dataDir,
  blobstoreDiskLocation: `${dataDir}/blobs`,
  didPlcUrl: `http://127.0.0.1:${plcPort}`,
  serviceHandleDomains: ['.test'],
  jwtSecret: crypto.randomBytes(16).toString('hex'),
  adminPassword: 'admin-pass',
  plcRotationKeyK256PrivateKeyHex: rotationHex,
  inviteRequired: false,
  rateLimitsEnabled: false,
  crawlers: [],
  disableSsrfProtection: true,
}
const cfg = pds.envToCfg(env)
const secrets = pds.envToSecrets(env)
const server = await pds.PDS.create(cfg, secrets)
await server.start()
process.stdout.write(JSON.stringify({ ready: true, pds: `http://localhost:${pdsPort}`, plc: `http://127.0.0.1:${plcPort}` }) + '\n')

const stop = async () => {
  await server.destroy().catch(() => {})
  await plc.destroy().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
