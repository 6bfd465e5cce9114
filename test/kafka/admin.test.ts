import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createAdmin } from '../../kafka/index.ts'
import { admin, brokers, closeAdmin, produce, readAll, text, uniqueName } from '../helpers/kafka.ts'

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

test('deleteRecords moves a partition\'s log start offset: the records below it are gone', async () => {
  const name = uniqueName('delete-records')
  await admin().createTopics([{ name, partitions: 1 }])
  try {
    await produce(['a', 'b', 'c', 'd'].map((value) => ({ topic: name, partition: 0, value })))
    assert.equal(await admin().deleteRecords(name, 0, 2n), 2n)
    assert.deepEqual(
      (await readAll(name)).map((r) => [r.offset, text(r)]),
      [
        [2n, 'c'],
        [3n, 'd'],
      ],
    )
  } finally {
    await admin().deleteTopics([name])
  }
})
