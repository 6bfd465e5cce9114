// bench/report.ts renders bench:partition's JSON line as docs tables: pure logic on a hand-made result.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { lastJsonLine, markdown, svg } from '../../bench/report.ts'

const delayedOnly = {
  bench: 'partition',
  at: '2026-11-29T23:40:12.000Z',
  machine: { cpus: 2, node: 'v24.22.3' },
  topology: 'command-service',
  records: 20000,
  payloadBytes: 100,
  exactlyOnce: true,
  runs: 3,
  throughput: {},
  delayedDelivery: {
    ratePerSecond: 20000,
    latenessP99Ms: {
      '1000000': {
        details: {
          weir: { system: 'weir', pending: 1_000_000, offeredPerSecond: 20000, deliveredPerSecond: 19941, latenessP50Ms: 9, latenessP99Ms: 225, latenessMaxMs: 294, delivered: 1_000_000, dueBeforeReady: 0, duplicates: 0, missing: 0, ingestSeconds: 70.1 },
        },
      },
    },
  },
}

test('a run with only delayed delivery renders its dated table and no empty throughput table', () => {
  const log = `progress line\n${JSON.stringify(delayedOnly)}\n`
  const text = markdown([lastJsonLine(log)], '2 vCPU')
  assert.doesNotMatch(text, /### Throughput/)
  assert.match(text, /### Delayed delivery \(2026-11-29 23:40 UTC; offered 20,000\/s/)
  assert.match(text, /\| 1,000,000 \| weir \| 19,941 \| 9 \| 225 \| 294 \| 0 \| 0 \| 0 \| 70.1 \|/)
  assert.doesNotMatch(svg([lastJsonLine(log)]), /height="13"/, "no throughput bars")
})

test('a log without the JSON line is refused with a message that says to use --json', () => {
  assert.throws(() => lastJsonLine('no json here\n'), /run with --json/)
})
