// The secure side of the local broker (`--secure`): a SASL_SSL listener next to the PLAINTEXT one, with
// certificates made at start by openssl, SCRAM-SHA-512 and PLAIN users, the KRaft StandardAuthorizer, and the
// ACLs a weir worker and a gateway need (docs/production.md lists the same ones). The PLAINTEXT listener's
// principal (ANONYMOUS) is a super user, so the rest of the suite runs unchanged.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

import type { AclBinding, KafkaAdmin } from '../../kafka/index.ts'
import { InfraUnavailable } from './progress.ts'

const run = promisify(execFile)

/** Topics, groups and transactional ids under this prefix belong to the worker and gateway principals. */
export const SECURE_PREFIX = 'weir-secure-'

export const SECURE_USERS = ['admin', 'worker', 'gateway'] as const
export type SecureUser = (typeof SECURE_USERS)[number]

export interface SecureMaterial {
  readonly dir: string
  /** The CA that signed the broker's certificate (PEM file). */
  readonly caFile: string
  readonly keystoreFile: string
  readonly passwords: Readonly<Record<SecureUser, string>>
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 60_000 })
  } catch (error) {
    const e = error as { code?: string; stderr?: string }
    if (e.code === 'ENOENT') throw new InfraUnavailable('--secure needs openssl to make certificates: apt-get install -y openssl')
    throw new InfraUnavailable(`openssl ${args[0]} failed: ${e.stderr ?? String(error)}`)
  }
}

/** A self-signed CA (ca.pem, ca.key) in `dir`, named `name`. */
export async function makeCertificateAuthority(dir: string, name = 'ca'): Promise<string> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '7', '-subj', `/CN=weir local ${name}`], dir)
  return join(dir, `${name}.pem`)
}

/** CA, broker certificate for 127.0.0.1 and localhost, and a random password per user. */
export async function makeSecureMaterial(dir: string): Promise<SecureMaterial> {
  const caFile = await makeCertificateAuthority(dir)
  await writeFile(join(dir, 'broker.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=localhost'], dir)
  await openssl(['x509', '-req', '-in', 'broker.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.pem', '-days', '7', '-extfile', 'broker.ext'], dir)
  const keystoreFile = join(dir, 'broker-keystore.pem')
  // Kafka's PEM keystore: the certificate chain and the (unencrypted PKCS#8) key in one file.
  await writeFile(keystoreFile, `${await readFile(join(dir, 'broker.pem'), 'utf8')}${await readFile(join(dir, 'broker.key'), 'utf8')}`)
  const passwords = Object.fromEntries(SECURE_USERS.map((u) => [u, `${u}-${randomBytes(12).toString('base64url')}`])) as Record<SecureUser, string>
  return { dir, caFile, keystoreFile, passwords }
}

/** Broker properties of the SASL_SSL listener (the caller adds it to `listeners`). */
export function secureBrokerProperties(material: SecureMaterial): string[] {
  const plainUsers = SECURE_USERS.map((u) => `user_${u}="${material.passwords[u]}"`).join(' ')
  return [
    'sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN',
    `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${material.passwords.admin}" ${plainUsers};`,
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${material.keystoreFile}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${material.caFile}`,
    'ssl.client.auth=none',
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    // ANONYMOUS: the PLAINTEXT and CONTROLLER listeners (the suite, the brokers themselves).
    'super.users=User:admin;User:ANONYMOUS',
    'allow.everyone.if.no.acl.found=false',
  ]
}

/** StorageTool arguments that create the SCRAM-SHA-512 users before the first start. */
export function scramFormatArguments(material: SecureMaterial): string[] {
  return SECURE_USERS.flatMap((u) => ['--add-scram', `SCRAM-SHA-512=[name=${u},password=${material.passwords[u]}]`])
}

/**
 * Exactly what a weir worker needs (application id and topics under SECURE_PREFIX), and what a gateway
 * needs (read results and events, write commands and deadlines); docs/production.md explains each line.
 */
export function weirAcls(prefix: string = SECURE_PREFIX): AclBinding[] {
  const worker = 'User:worker'
  const gateway = 'User:gateway'
  const topic = (principal: string, operation: AclBinding['operation']): AclBinding => ({ principal, resourceType: 'Topic', resourceName: prefix, pattern: 'prefixed', operation })
  return [
    // Worker: sources (Read), sinks (Write), internal topics it creates (changelogs, dead letters: Create).
    ...(['Read', 'Write', 'Create', 'Describe'] as const).map((op) => topic(worker, op)),
    // Its consumer group (the application id): join, fetch offsets, commit offsets in transactions.
    { principal: worker, resourceType: 'Group', resourceName: prefix, pattern: 'prefixed', operation: 'Read' },
    { principal: worker, resourceType: 'Group', resourceName: prefix, pattern: 'prefixed', operation: 'Describe' },
    // Its transactional ids (<application id>-<partition>).
    { principal: worker, resourceType: 'TransactionalId', resourceName: prefix, pattern: 'prefixed', operation: 'Write' },
    { principal: worker, resourceType: 'TransactionalId', resourceName: prefix, pattern: 'prefixed', operation: 'Describe' },
    // Gateway: writes commands and deadlines, reads results and events, never creates topics or joins a group.
    ...(['Read', 'Write', 'Describe'] as const).map((op) => topic(gateway, op)),
  ]
}

/** Creates the ACLs with an admin on the PLAINTEXT listener (its principal is a super user). */
export async function grantWeirAcls(admin: KafkaAdmin, prefix: string = SECURE_PREFIX): Promise<void> {
  await admin.createAcls(weirAcls(prefix))
}

/** A Java-style client properties file for `user` (what a provider hands out; `--kafka-config` reads it). */
export function clientPropertiesText(material: SecureMaterial, brokers: readonly string[], user: SecureUser, mechanism: 'SCRAM-SHA-512' | 'PLAIN' = 'SCRAM-SHA-512'): string {
  const module = mechanism === 'PLAIN' ? 'org.apache.kafka.common.security.plain.PlainLoginModule' : 'org.apache.kafka.common.security.scram.ScramLoginModule'
  return [
    `# ${user} on the local SASL_SSL listener (${mechanism})`,
    `bootstrap.servers=${brokers.join(',')}`,
    'security.protocol=SASL_SSL',
    `sasl.mechanism=${mechanism}`,
    `sasl.jaas.config=${module} required username="${user}" password="${material.passwords[user]}";`,
    `ssl.ca.location=${material.caFile}`,
    '',
  ].join('\n')
}

/** Writes <user>.properties (SCRAM-SHA-512) and <user>-plain.properties (PLAIN) for every user into the folder. */
export async function writeClientProperties(material: SecureMaterial, brokers: readonly string[]): Promise<void> {
  for (const user of SECURE_USERS) {
    await writeFile(join(material.dir, `${user}.properties`), clientPropertiesText(material, brokers, user), { mode: 0o600 })
    await writeFile(join(material.dir, `${user}-plain.properties`), clientPropertiesText(material, brokers, user, 'PLAIN'), { mode: 0o600 })
  }
}
