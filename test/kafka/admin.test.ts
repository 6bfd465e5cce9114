import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { after, test } from 'node:test'

import { channelNames } from '../../core/diagnostics.ts'
import { checkReplication, createAdmin, validateReplication, withReplication } from '../../kafka/index.ts'
import { admin, brokers, closeAdmin, createTopics, uniqueName } from '../helpers/kafka.ts'

after(closeAdmin)

test('creating a topic that another client creates at the same time is not an error', async () => {
  const name = uniqueName('race')
  const other = createAdmin({ brokers: brokers() })
  try {
    await Promise.all([admin().createTopics([{ name, partitions: 2 }]), other.createTopics([{ name, partitions: 2 }])])
  } finally {
    await other.close()
  }
  assert.equal(await admin().partitionCount(name), 2)
  await admin().deleteTopics([name])
})

test('topics are created with the broker default replication; one with fewer replicas than configured is reported by name', async (t) => {
  const [topic] = await createTopics(t, { prefix: 'replication', partitions: 2 })
  assert.ok(topic !== undefined)
  const factors = await admin().replicationFactors([topic, 'no-such-topic-at-all'])
  assert.deepEqual([...factors.keys()], [topic])
  const brokerDefault = await admin().defaultReplicationFactor()
  assert.ok(brokerDefault !== undefined && brokerDefault >= 1)
  assert.equal(factors.get(topic), brokerDefault)

  const seen: unknown[] = []
  const listener = (message: unknown) => void seen.push(message)
  diagnostics.subscribe(channelNames.kafkaTopicReplication, listener)
  t.after(() => diagnostics.unsubscribe(channelNames.kafkaTopicReplication, listener))
  const wanted = (factors.get(topic) as number) + 1
  const warnings = await checkReplication(admin(), [topic], { replicationFactor: wanted }, 'replication-app')
  assert.deepEqual(warnings, [{ topic, replicas: wanted - 1, expected: wanted }])
  assert.deepEqual(seen, [{ applicationId: 'replication-app', topic, replicas: wanted - 1, expected: wanted }])
  assert.deepEqual(await checkReplication(admin(), [topic], { replicationFactor: wanted - 1 }), [])
})

test('the application replication settings reach every topic spec; a spec of its own wins', () => {
  const specs = withReplication([{ name: 'a', configs: { 'cleanup.policy': 'compact' } }, { name: 'b', replicationFactor: 1, configs: { 'min.insync.replicas': '1' } }], { replicationFactor: 3, minInsyncReplicas: 2 })
  assert.deepEqual(specs, [
    { name: 'a', replicationFactor: 3, configs: { 'min.insync.replicas': '2', 'cleanup.policy': 'compact' } },
    { name: 'b', replicationFactor: 1, configs: { 'min.insync.replicas': '1' } },
  ])
  const violations: string[] = []
  validateReplication({ replicationFactor: 2, minInsyncReplicas: 3 }, violations)
  validateReplication({ replicationFactor: 0 }, violations)
  assert.equal(violations.length, 2)
})
