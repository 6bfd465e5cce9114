// weir/testing: run a topology in-process without Kafka.
export { createTestDriver } from './topology/test-driver.ts'
export { createMemoryStore } from './state/memory-store.ts'

export type { DriverOutput, PipeInput, TestDriver, TestDriverOptions } from './topology/test-driver.ts'
