// A stateful pass-through for the benchmarks: a per-key counter in RocksDB, one output per input (the
// simplest topology with state, the counterpart of Kafka Streams' `counting` baseline mode).
import { defineTopology } from '../../topology/define.ts'
import type { ProcessorContext } from '../../topology/processor.ts'
import type { StreamRecord } from '../../topology/record.ts'
import type { Topology } from '../../topology/define.ts'

export const applicationId = process.env.WEIR_BENCH_APPLICATION_ID ?? 'weir-bench-counting'

/** The counter; with `ioMs` > 0 each record first awaits that long (simulated I/O: bench/topologies/io-handler.ts). */
export function countingTopology(ioMs = 0): Topology {
  const input = process.env.WEIR_BENCH_INPUT ?? 'bench.input'
  const output = process.env.WEIR_BENCH_OUTPUT ?? 'bench.output'
  return defineTopology({
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
              if (ioMs > 0) await new Promise((r) => setTimeout(r, ioMs))
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
}

export const topology = countingTopology()
