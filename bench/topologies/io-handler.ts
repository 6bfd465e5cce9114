// The counting topology with a handler that waits on I/O: each input awaits WEIR_BENCH_IO_MS (default 10) of
// simulated I/O (a timer, no CPU) before it counts its key and forwards. With the serial loop a task handles at
// most 1000 / WEIR_BENCH_IO_MS records/s; with the worker's --max-in-flight (WEIR_MAX_IN_FLIGHT) above 1, records
// of different keys wait together.
import { countingTopology } from './counting.ts'

export const applicationId = process.env.WEIR_BENCH_APPLICATION_ID ?? 'weir-bench-io'

export const topology = countingTopology(Number(process.env.WEIR_BENCH_IO_MS ?? 10))
