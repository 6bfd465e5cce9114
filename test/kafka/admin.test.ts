import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createAdmin } from '../../kafka/index.ts'
import { admin, brokers, closeAdmin, uniqueName } from '../helpers/kafka.ts'

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
