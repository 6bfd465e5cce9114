// End to end on the real broker: the gateway stamps the socket's authenticated subject and roles on every command
// envelope (`actor`), and the handler running in a real worker (stream runtime, command service, RocksDB) sees them
// on its context, enough to check who owns an entity.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import type { Actor } from '../../envelope/envelope.ts'
import { connect } from '../../gateway/client.ts'
import { NonRetriableError, createCommandRegistry } from '../../processors/command-router.ts'
import type { CommandContext, CommandHandler } from '../../processors/command-router.ts'
import { commandService } from '../../processors/command-service.ts'
import type { WeirError } from '../../core/errors.ts'
import { admin, closeAdmin, createTopics, uniqueName } from '../helpers/kafka.ts'
import { startTestRuntime } from '../helpers/runtime.ts'
import { startGateway, startTestWorker, token } from './helpers.ts'

after(closeAdmin)

test('the handler sees the subject and roles of the socket that sent the command, and can check ownership with them', async (t) => {
  const [commands, results, events] = await createTopics(t, { prefix: 'actor-commands', partitions: 1 }, { prefix: 'actor-results', partitions: 1 }, { prefix: 'actor-events', partitions: 1 })
  assert.ok(commands !== undefined && results !== undefined && events !== undefined)
  const seen: Array<Actor | undefined> = []
  const whoami: CommandHandler<Record<string, never>, { actor: Actor | null }> = {
    contextPath: 'me',
    alias: 'whoami',
    payloadSchema: { type: 'object' },
    handle: (ctx) => {
      seen.push(ctx.actor)
      return { actor: ctx.actor ?? null }
    },
  }
  const claim: CommandHandler<{ thing: string }, { owner: string }> = {
    contextPath: 'things',
    alias: 'claim',
    keyField: 'thing',
    stores: ['owners'],
    payloadSchema: { type: 'object', required: ['thing'], properties: { thing: { type: 'string' } } },
    async handle(ctx: CommandContext<{ thing: string }>) {
      const owners = ctx.store<string, string>('owners')
      const owner = await owners.get(ctx.payload.thing)
      if (ctx.actor === undefined) throw new NonRetriableError('only a signed-in subject may claim')
      if (owner !== undefined && owner !== ctx.actor.sub && !ctx.actor.roles.includes('admin')) {
        throw new NonRetriableError(`${ctx.payload.thing} belongs to ${owner}`)
      }
      await owners.put(ctx.payload.thing, owner ?? ctx.actor.sub)
      return { owner: owner ?? ctx.actor.sub }
    },
  }
  const registry = createCommandRegistry({ topicAlias: 'app', topics: { commands, results, events }, handlers: [whoami, claim] })
  const service = commandService({ registry })
  await admin().createTopics([service.topics.deadlines, service.topics.scheduler, service.topics.lateResults].map((name) => ({ name, partitions: 1 })))

  await startTestRuntime(t, { applicationId: uniqueName('actor-app'), topology: service.topology, stateDirPrefix: 'weir-actor-' })
  const gateway = await startGateway(t, { catalog: registry.catalog, deadlines: 'deadlines-topic' })
  // Reads the commands topic as written, to check the envelope itself.
  const written = await startTestWorker(t, { commands, results, events, deadlines: service.topics.deadlines })

  const errors: WeirError[] = []
  const client = async (sub: string, roles: string[]) => {
    const c = await connect({ url: `ws://127.0.0.1:${gateway.port}/ws`, token: await token({ sub, roles }), onError: (e) => errors.push(e) })
    t.after(() => c.close())
    return c
  }
  const olivia = await client('olivia', ['buyer', 'beta'])
  const peter = await client('peter', [])

  const mine = await olivia.send('app/me/whoami', {}, { requestId: 'whoami-olivia', ttlMs: 60_000 })
  assert.deepEqual(mine.payload, { actor: { sub: 'olivia', roles: ['buyer', 'beta'] } })
  assert.deepEqual((await peter.send('app/me/whoami', {}, { ttlMs: 60_000 })).payload, { actor: { sub: 'peter', roles: [] } })
  assert.deepEqual(seen.slice(0, 2), [
    { sub: 'olivia', roles: ['buyer', 'beta'] },
    { sub: 'peter', roles: [] },
  ])
  // An empty role name in the token is no role (an actor with one would not be a valid envelope).
  const quinn = await client('quinn', ['', 'clerk'])
  assert.deepEqual((await quinn.send('app/me/whoami', {}, { ttlMs: 60_000 })).payload, { actor: { sub: 'quinn', roles: ['clerk'] } })
  const envelope = await written.command((c) => c.requestId === 'whoami-olivia')
  assert.deepEqual(envelope.actor, { sub: 'olivia', roles: ['buyer', 'beta'] })

  // Ownership: the first claimer owns the thing; another subject is refused; the owner may claim again.
  assert.deepEqual((await olivia.send('app/things/claim', { thing: 'lamp' }, { ttlMs: 60_000 })).payload, { owner: 'olivia' })
  await assert.rejects(peter.send('app/things/claim', { thing: 'lamp' }, { ttlMs: 60_000 }), (error: WeirError) => {
    assert.equal(error.code, 'WEIR_ERR_NON_RETRIABLE')
    assert.match(error.message, /belongs to olivia/)
    return true
  })
  assert.deepEqual((await olivia.send('app/things/claim', { thing: 'lamp' }, { ttlMs: 60_000 })).payload, { owner: 'olivia' })

  // A refreshed token's roles are what later commands carry.
  await peter.refreshToken(await token({ sub: 'peter', roles: ['admin'] }))
  for (let i = 0; i < 200; i++) {
    const { payload } = await peter.send('app/me/whoami', {}, { ttlMs: 60_000 })
    if ((payload as { actor: Actor }).actor.roles.includes('admin')) break
    await new Promise((r) => setTimeout(r, 20))
  }
  assert.deepEqual((await peter.send('app/things/claim', { thing: 'lamp' }, { ttlMs: 60_000 })).payload, { owner: 'olivia' })
  assert.deepEqual(errors, [])
})
