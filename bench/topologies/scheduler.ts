// The delayed-delivery topology the benchmarks run in a worker process: schedule requests in, due records
// out to the topic each request names. Topics come from the environment (the worker loads this module).
import { dueDeliverySerde, scheduler, schedulerRequestSerde } from '../../processors/scheduler.ts'
import { defineTopology } from '../../topology/define.ts'

const requests = process.env.WEIR_BENCH_REQUESTS_TOPIC ?? 'bench.schedule'

export const applicationId = process.env.WEIR_BENCH_APPLICATION_ID ?? 'weir-bench-scheduler'

export const topology = defineTopology({
  sources: { schedule: { topic: requests, keySerde: 'string', valueSerde: schedulerRequestSerde } },
  processors: { scheduler: { from: ['schedule'], timers: true, use: scheduler() } },
  sinks: {
    due: {
      from: ['scheduler'],
      topic: (record) => (record.value as { topic: string }).topic,
      keySerde: 'buffer',
      valueSerde: dueDeliverySerde,
    },
  },
})
