// The seeds' Redis schedule (the "old design"), laid out so several pollers can share it safely:
//
//   <prefix>:due       sorted set   id -> deliverAt (ms since the epoch)
//   <prefix>:body      hash         id -> the envelope (msgpack, see encodeRedisEnvelope)
//   <prefix>:claims    sorted set   id -> lease expiry (ms); a claimed id is in here and no longer in :due
//   <prefix>:attempts  hash         id -> publish attempts so far (only after a lease expired once)
//   <prefix>:dead      hash         id -> the raw body of an envelope that could not be decoded or published
//   <prefix>:dead-why  hash         id -> why it was moved aside
//
// Every multi-key step is one Lua script, so it is atomic. For Redis Cluster, put a hash tag in the prefix
// (`{sched}`) so all keys live in one slot. Only processors/redis/ imports ioredis (eslint.config.js).
import { createHash } from 'node:crypto'

import { Redis } from 'ioredis'
import { Packr, Unpackr } from 'msgpackr'

import { WeirError, invalidOptions } from '../../core/errors.ts'

/** The seeds' Envelope: "produce `value` to `topic` with `key` and `headers` at `deliverAt`". */
export interface RedisEnvelope {
  /** Unique id; scheduling an id again replaces it. */
  id: string
  topic: string
  key?: Uint8Array | string | null
  value: Uint8Array | string | null
  headers?: Readonly<Record<string, Uint8Array | string>>
  /** When to produce, ms since the epoch. */
  deliverAt: number
}

/** An envelope as stored: bytes everywhere. */
export interface StoredEnvelope {
  id: string
  topic: string
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, Buffer>
  deliverAt: number
}

export interface RedisKeys {
  due: string
  body: string
  claims: string
  attempts: string
  dead: string
  deadWhy: string
}

export function redisKeys(prefix: string): RedisKeys {
  if (typeof prefix !== 'string' || prefix.length === 0) throw invalidOptions('redis schedule', ['keyPrefix must be a non-empty string'])
  return {
    due: `${prefix}:due`,
    body: `${prefix}:body`,
    claims: `${prefix}:claims`,
    attempts: `${prefix}:attempts`,
    dead: `${prefix}:dead`,
    deadWhy: `${prefix}:dead-why`,
  }
}

const packr = new Packr({ useRecords: false, moreTypes: false })
// Bodies written by other languages carry deliverAt as uint64/int64: read those as numbers (see envelope/codec.ts).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'auto' as unknown as 'bigint' })
const FORMAT_VERSION = 1

const toBuffer = (value: Uint8Array | string): Buffer => (typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength))

export function validateRedisEnvelope(envelope: unknown): string[] {
  if (typeof envelope !== 'object' || envelope === null) return ['not an object']
  const e = envelope as Record<string, unknown>
  const problems: string[] = []
  const bytesOrString = (v: unknown) => typeof v === 'string' || v instanceof Uint8Array
  if (typeof e.id !== 'string' || e.id.length === 0) problems.push('id must be a non-empty string')
  if (typeof e.topic !== 'string' || e.topic.length === 0) problems.push('topic must be a non-empty string')
  if (typeof e.deliverAt !== 'number' || !Number.isFinite(e.deliverAt)) problems.push('deliverAt must be a finite number (ms since the epoch)')
  if (e.value !== null && !bytesOrString(e.value)) problems.push('value must be bytes, a string or null')
  if (e.key !== undefined && e.key !== null && !bytesOrString(e.key)) problems.push('key must be bytes, a string or null')
  if (e.headers !== undefined) {
    if (typeof e.headers !== 'object' || e.headers === null) problems.push('headers must be an object')
    else for (const [name, value] of Object.entries(e.headers)) if (!bytesOrString(value)) problems.push(`header ${name} must be bytes or a string`)
  }
  return problems
}

/** The body stored in `<prefix>:body`: one msgpack map with a format version. */
export function encodeRedisEnvelope(envelope: RedisEnvelope): Buffer {
  const problems = validateRedisEnvelope(envelope)
  if (problems.length > 0) {
    throw new WeirError('WEIR_ERR_INVALID_ARGUMENT', `invalid envelope ${String((envelope as { id?: unknown })?.id)}: ${problems.join('; ')}`, { details: { violations: problems } })
  }
  const headers: Record<string, Buffer> = {}
  for (const [name, value] of Object.entries(envelope.headers ?? {})) headers[name] = toBuffer(value)
  return packr.pack({
    v: FORMAT_VERSION,
    id: envelope.id,
    topic: envelope.topic,
    key: envelope.key === undefined || envelope.key === null ? null : toBuffer(envelope.key),
    value: envelope.value === null ? null : toBuffer(envelope.value),
    headers,
    deliverAt: envelope.deliverAt,
  })
}

export type DecodeResult = { ok: true; envelope: StoredEnvelope } | { ok: false; problem: string }

/**
 * Reads a stored body. Also accepts a JSON object (`{"topic":…,"key":…,"value":…,"deliverAt":…}`, strings
 * written as UTF-8), the shape older Redis schedulers commonly used, so the importer can migrate them.
 */
export function decodeRedisEnvelope(id: string, body: Buffer | null | undefined): DecodeResult {
  if (body === null || body === undefined) return { ok: false, problem: 'no body in the hash for this id' }
  let document: unknown
  try {
    document = body[0] === 0x7b ? JSON.parse(body.toString('utf8')) : unpackr.unpack(body)
  } catch (error) {
    return { ok: false, problem: `not msgpack or JSON: ${error instanceof Error ? error.message : String(error)}` }
  }
  if (typeof document !== 'object' || document === null) return { ok: false, problem: 'not a map' }
  const d = document as Record<string, unknown>
  if (d.v !== undefined && d.v !== FORMAT_VERSION) return { ok: false, problem: `format version ${String(d.v)} is not ${FORMAT_VERSION}` }
  const candidate = { ...d, id: d.id ?? id, value: d.value === undefined ? null : d.value }
  const problems = validateRedisEnvelope(candidate)
  if (candidate.id !== id) problems.push(`body id ${String(candidate.id)} differs from member ${id}`)
  if (problems.length > 0) return { ok: false, problem: problems.join('; ') }
  const e = candidate as unknown as RedisEnvelope
  const headers: Record<string, Buffer> = {}
  for (const [name, value] of Object.entries(e.headers ?? {})) headers[name] = toBuffer(value)
  return {
    ok: true,
    envelope: {
      id,
      topic: e.topic,
      key: e.key === undefined || e.key === null ? null : toBuffer(e.key),
      value: e.value === null ? null : toBuffer(e.value),
      headers,
      deliverAt: e.deliverAt,
    },
  }
}

export const sha1 = (body: Buffer): string => createHash('sha1').update(body).digest('hex')

// Claims up to ARGV[3] ids: first those whose lease expired (a poller died or failed between claim and ack),
// then due ones, moving them from :due to :claims with a lease. Returns the number reclaimed, the ids, their
// bodies, their attempt counts, and the earliest upcoming score (a due time or a lease expiry) for the wait.
const CLAIM = `
local now = tonumber(ARGV[1])
local lease = now + tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local ids = {}
local attempts = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZADD', KEYS[2], lease, id)
  ids[#ids + 1] = id
  attempts[#attempts + 1] = redis.call('HINCRBY', KEYS[4], id, 1) + 1
end
local reclaimed = #ids
if #ids < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #ids)
  if #due > 0 then
    local args = {}
    for _, id in ipairs(due) do
      args[#args + 1] = lease
      args[#args + 1] = id
      ids[#ids + 1] = id
      attempts[#attempts + 1] = 1
    end
    redis.call('ZREM', KEYS[1], unpack(due))
    redis.call('ZADD', KEYS[2], unpack(args))
  end
end
local bodies = {}
if #ids > 0 then bodies = redis.call('HMGET', KEYS[3], unpack(ids)) end
local nextDue = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or false
local nextLease = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2] or false
return {reclaimed, ids, bodies, attempts, nextDue, nextLease}
`

// Acknowledges published ids: drops the claim, and the body unless the id was scheduled again meanwhile.
const ACK = `
for _, id in ipairs(ARGV) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[4], id)
  if not redis.call('ZSCORE', KEYS[2], id) then redis.call('HDEL', KEYS[3], id) end
end
return #ARGV
`

// Moves ids aside (undecodable, or publishing kept failing): raw body and reason into :dead, out of everything else.
// ARGV: id1, reason1, id2, reason2, ...
const MOVE_ASIDE = `
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  local body = redis.call('HGET', KEYS[3], id) or ''
  redis.call('HSET', KEYS[5], id, body)
  redis.call('HSET', KEYS[6], id, ARGV[i + 1])
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
return #ARGV / 2
`

// Removes imported ids, but only those unchanged since they were read (same score in KEYS[1], same body
// hash), so an envelope rescheduled during the import is left for the next batch. ARGV: id, score, sha1, ...
const REMOVE_IF_UNCHANGED = `
local removed = 0
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  local body = redis.call('HGET', KEYS[2], id)
  if score and tonumber(score) == tonumber(ARGV[i + 1]) and body and redis.sha1hex(body) == ARGV[i + 2] then
    redis.call('ZREM', KEYS[1], id)
    if not redis.call('ZSCORE', KEYS[3], id) then
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[4], id)
    end
    removed = removed + 1
  end
end
return removed
`

export interface Claimed {
  reclaimed: number
  entries: Array<{ id: string; body: Buffer | null; attempts: number }>
  /** Earliest due time or lease expiry still waiting, ms; undefined when none. */
  next: number | undefined
}

export interface RedisScheduleStore {
  readonly keys: RedisKeys
  readonly redis: Redis
  claim(now: number, leaseMs: number, limit: number): Promise<Claimed>
  ack(ids: readonly string[]): Promise<void>
  moveAside(entries: ReadonlyArray<{ id: string; reason: string }>): Promise<void>
  /** Reads up to `limit` members of `which` in score order without changing anything. */
  peek(which: 'due' | 'claims', limit: number): Promise<Array<{ id: string; score: number; body: Buffer | null }>>
  removeIfUnchanged(which: 'due' | 'claims', entries: ReadonlyArray<{ id: string; score: number; bodySha1: string }>): Promise<number>
  counts(): Promise<{ due: number; claims: number; dead: number }>
}

export function connectRedis(redis: string | Redis): { client: Redis; owned: boolean } {
  if (typeof redis !== 'string') return { client: redis, owned: false }
  return { client: new Redis(redis, { maxRetriesPerRequest: 3 }), owned: true }
}

export function redisError(error: unknown, what: string): WeirError {
  if (error instanceof WeirError) return error
  return new WeirError('WEIR_ERR_REDIS', `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
}

/** Runs a Lua script by its SHA1 (EVALSHA), loading it with EVAL the first time a server does not know it. */
function luaScript(lua: string): (redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>) => Promise<unknown> {
  const digest = createHash('sha1').update(lua).digest('hex')
  return async (redis, keys, args) => {
    try {
      return await redis.callBuffer('EVALSHA', [digest, keys.length, ...keys, ...args])
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return redis.callBuffer('EVAL', [lua, keys.length, ...keys, ...args])
    }
  }
}

const claimScript = luaScript(CLAIM)
const ackScript = luaScript(ACK)
const moveAsideScript = luaScript(MOVE_ASIDE)
const removeScript = luaScript(REMOVE_IF_UNCHANGED)

export function createRedisScheduleStore(redis: Redis, keyPrefix: string): RedisScheduleStore {
  const keys = redisKeys(keyPrefix)
  const all = [keys.due, keys.claims, keys.body, keys.attempts, keys.dead, keys.deadWhy]
  const run = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    try {
      return await step()
    } catch (error) {
      throw redisError(error, what)
    }
  }
  const num = (value: Buffer | string | null | false | undefined) => (value === null || value === undefined || value === false ? undefined : Number(value.toString()))
  return {
    keys,
    redis,
    claim: (now, leaseMs, limit) =>
      run('claim', async () => {
        const reply = (await claimScript(redis, [keys.due, keys.claims, keys.body, keys.attempts], [now, leaseMs, limit])) as [
          number,
          Buffer[],
          Array<Buffer | null>,
          number[],
          Buffer | null,
          Buffer | null,
        ]
        const [reclaimed, ids, bodies, attempts, nextDue, nextLease] = reply
        const upcoming = [num(nextDue), num(nextLease)].filter((n): n is number => n !== undefined)
        return {
          reclaimed,
          entries: ids.map((id, i) => ({ id: id.toString('utf8'), body: bodies[i] ?? null, attempts: Number(attempts[i] ?? 1) })),
          next: upcoming.length === 0 ? undefined : Math.min(...upcoming),
        }
      }),
    ack: async (ids) => {
      if (ids.length === 0) return
      await run('ack', () => ackScript(redis, [keys.claims, keys.due, keys.body, keys.attempts], ids))
    },
    moveAside: async (entries) => {
      if (entries.length === 0) return
      await run('move aside', () => moveAsideScript(redis, all, entries.flatMap((e) => [e.id, e.reason])))
    },
    peek: (which, limit) =>
      run('peek', async () => {
        const key = which === 'due' ? keys.due : keys.claims
        const flat = await redis.zrangeBuffer(key, '0', String(limit - 1), 'WITHSCORES')
        const members: Array<{ id: string; score: number }> = []
        for (let i = 0; i + 1 < flat.length; i += 2) members.push({ id: (flat[i] as Buffer).toString('utf8'), score: Number((flat[i + 1] as Buffer).toString()) })
        if (members.length === 0) return []
        const bodies = await redis.hmgetBuffer(keys.body, ...members.map((m) => m.id))
        return members.map((m, i) => ({ ...m, body: bodies[i] ?? null }))
      }),
    removeIfUnchanged: async (which, entries) => {
      if (entries.length === 0) return 0
      const source = which === 'due' ? keys.due : keys.claims
      const other = which === 'due' ? keys.claims : keys.due
      return run('remove imported', async () =>
        Number(await removeScript(redis, [source, keys.body, other, keys.attempts], entries.flatMap((e) => [e.id, String(e.score), e.bodySha1]))),
      )
    },
    counts: () =>
      run('counts', async () => {
        const [due, claims, dead] = await Promise.all([redis.zcard(keys.due), redis.zcard(keys.claims), redis.hlen(keys.dead)])
        return { due, claims, dead }
      }),
  }
}

export interface ScheduleInRedisOptions {
  /** Envelopes per pipeline round trip (default 5000). */
  chunkSize?: number
  onProgress?: (loaded: number) => void
}

/**
 * Bulk-loads envelopes into the schedule (ZADD + HSET, pipelined in chunks), e.g. a million for a benchmark.
 * An id already present is replaced. Returns how many were written.
 */
export async function scheduleInRedis(
  redis: string | Redis,
  keyPrefix: string,
  envelopes: Iterable<RedisEnvelope> | AsyncIterable<RedisEnvelope>,
  options: ScheduleInRedisOptions = {},
): Promise<number> {
  const keys = redisKeys(keyPrefix)
  const chunkSize = options.chunkSize ?? 5000
  if (!(Number.isInteger(chunkSize) && chunkSize > 0)) throw invalidOptions('scheduleInRedis', ['chunkSize must be a positive integer'])
  const { client, owned } = connectRedis(redis)
  let loaded = 0
  let scores: Array<number | string> = []
  let fields: Array<string | Buffer> = []
  const flush = async () => {
    if (scores.length === 0) return
    try {
      const results = await client.pipeline().hset(keys.body, ...fields).zadd(keys.due, ...scores).exec()
      const failed = results?.find(([error]) => error !== null)
      if (failed !== undefined) throw failed[0]
    } catch (error) {
      throw redisError(error, 'scheduleInRedis')
    }
    loaded += scores.length / 2
    scores = []
    fields = []
    options.onProgress?.(loaded)
  }
  try {
    for await (const envelope of envelopes) {
      const body = encodeRedisEnvelope(envelope)
      scores.push(envelope.deliverAt, envelope.id)
      fields.push(envelope.id, body)
      if (scores.length / 2 >= chunkSize) await flush()
    }
    await flush()
    return loaded
  } finally {
    if (owned) await client.quit().catch(() => {})
  }
}
