import assert from 'node:assert/strict'
import { test } from 'node:test'

import { stagesOf } from '../../bench/cpu-stages.ts'

const frame = (functionName: string, url: string) => ({ functionName, url })

test('a sample is charged to the innermost weir file on its stack, library work to the weir code that called it', () => {
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 5, 7, 8] },
      { id: 2, callFrame: frame('process', 'file:///w/topology/runtime/task.ts'), children: [3] },
      { id: 3, callFrame: frame('get', 'file:///w/state/rocksdb-store.ts'), children: [4] },
      { id: 4, callFrame: frame('_getManySync', 'file:///w/node_modules/@nxtedition/rocksdb/index.js') },
      { id: 5, callFrame: frame('onData', 'file:///w/node_modules/@platformatic/kafka/dist/connection.js'), children: [6] },
      { id: 6, callFrame: frame('concat', 'node:buffer') },
      { id: 7, callFrame: frame('(garbage collector)', '') },
      { id: 8, callFrame: frame('(idle)', '') },
    ],
    samples: [4, 4, 2, 6, 7, 8],
    timeDeltas: [10, 20, 5, 7, 3, 100],
  }
  const stages = stagesOf(profile)
  assert.equal(stages.get('store reads and writes (write buffer, RocksDB)'), 30)
  assert.equal(stages.get('task and loop'), 5)
  assert.equal(stages.get('kafka client (its own callbacks: sockets, batches, CRC)'), 7)
  assert.equal(stages.get('gc'), 3)
  assert.equal(stages.get('idle'), 100)
})
