// The steady-state feeder in a process of its own (forked by bench/steady-state.ts's createFeederProcess with an
// IPC channel), so producing input never shares a thread with a system that runs in the bench process (the raw
// client). Messages in: {type: 'start', brokers, spec}, {type: 'feed', n}; out: {type: 'fed', produced} after each
// feed, {type: 'failed', message}.
import { inputMaker } from './inputs.ts'
import { createFeeder } from './steady-state.ts'
import type { Feeder, FeederReply, FeederRequest } from './steady-state.ts'

if (process.send === undefined) {
  process.stderr.write('bench/feeder-process.ts runs as a child of the bench (it needs an IPC channel)\n')
  process.exit(2)
}
const reply = (message: FeederReply) => (process.send as NonNullable<typeof process.send>)(message)
let feeder: Feeder | undefined
let queue: Promise<void> = Promise.resolve()
process.on('message', (message: FeederRequest) => {
  queue = queue.then(async () => {
    try {
      if (message.type === 'start') {
        feeder = createFeeder(message.brokers, inputMaker(message.spec), message.clientId)
        reply({ type: 'fed', produced: 0 })
      } else {
        await (feeder as Feeder).feed(message.n)
        reply({ type: 'fed', produced: (feeder as Feeder).produced })
      }
    } catch (error) {
      reply({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
    }
  })
})
// The parent closing the channel ends the feeder.
process.on('disconnect', () => {
  void queue.then(() => feeder?.close()).finally(() => process.exit(0))
})
