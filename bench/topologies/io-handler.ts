// The counting topology with a handler that waits on I/O: each input awaits WEIR_BENCH_IO_MS (default 10) of
// simulated I/O (a timer, no CPU) before it counts its key and forwards. With the serial loop a task handles at
// most 1000 / WEIR_BENCH_IO_MS records/s; with the worker's --max-in-flight (WEIR_MAX_IN_FLIGHT) above 1, records
// of different keys wait together.
import { defineTopology } from '../../topology/define.ts'
import type { ProcessorContext } from '../../topology/processor.ts'
import type { StreamRecord } from '../../topology/record.ts'

const input = process.env.WEIR_BENCH_INPUT ?? 'bench.input'
const output = process.env.WEIR_BENCH_OUTPUT ?? 'bench.output'
const ioMs = Number(process.env.WEIR_BENCH_IO_MS ?? 10)

export const applicationId = process.env.WEIR_BENCH_APPLICATION_ID ?? 'weir-bench-io'

export const topology = defineTopology({
  sources: { input: { topic: input, keySerde: 'string', valueSerde: 'buffer' } },
  stores: { counts: { keySerde: 'string', valueSerde: 'json' } },
  processors: {
    count: {
      from: ['input'],
      stores: ['counts'],
      use: () => {
        let context: ProcessorContext
        return {
          init(c) {
            context = c
          },
          async process(record: StreamRecord<string, Buffer>) {
            await new Promise((r) => setTimeout(r, ioMs))
            const store = context.store<string, number>('counts')
            await store.put(record.key, ((await store.get(record.key)) ?? 0) + 1)
            await context.forward(record)
          },
        }
      },
    },
  },
  sinks: { out: { from: ['count'], topic: output, keySerde: 'string', valueSerde: 'buffer' } },
})
