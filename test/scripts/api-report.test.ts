// The public surface is what docs/api-report.md says: a change of an entry point's names is a visible diff
// (regenerate with `npm run api-report`).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { collectSurface, REPORT_PATH, renderReport } from '../../scripts/api-report.ts'

const surface = collectSurface()

test('docs/api-report.md lists exactly the names every entry point exports (npm run api-report rewrites it)', () => {
  const kept = readFileSync(REPORT_PATH, 'utf8').split('\n')
  const now = renderReport(surface).split('\n')
  // The lines each side lacks first (readable), then the whole text (order and sections).
  assert.deepEqual({ added: now.filter((l) => !kept.includes(l)), removed: kept.filter((l) => !now.includes(l)) }, { added: [], removed: [] }, 'run `npm run api-report`')
  assert.deepEqual(now, kept, 'run `npm run api-report`')
})

test('the main entry keeps the runtime, the stores and the Kafka adapter internal', () => {
  const main = surface.find((e) => e.entry === 'weir')
  assert.ok(main !== undefined)
  const names = [...main.values, ...main.types]
  for (const internal of ['createStreamRuntime', 'changelogTopic', 'DEAD_LETTER_HEADERS', 'OpenedStore', 'StoreOpener', 'ErrorPolicy', 'createAdmin', 'createConsumer', 'createProducer', 'createPartitionReader', 'openStore']) {
    assert.ok(!names.includes(internal), `${internal} is exported by weir`)
  }
  assert.ok(main.values.includes('defineTopology') && main.types.includes('KafkaConnection'))
})
