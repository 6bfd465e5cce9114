// The chaos run's collection: what the read_committed tail saw, sorted into the trackers the verdict judges,
// until everything expected is there (or the time is up), then once more after a pause.
import { ChaosTracker, CommandServiceChaosTracker, addCommandServiceRecord } from '../../test/helpers/chaos-check.ts'
import type { ChaosRequest, CommandServiceChaosTopics } from '../../test/helpers/chaos-check.ts'
import type { Tail, TailedRecord } from '../../test/helpers/tail.ts'
import type { Progress } from '../infra/index.ts'
import type { SagaChaos } from './sagas.ts'
import { sleep } from './options.ts'

export interface Collected {
  topology: ChaosTracker
  service: CommandServiceChaosTracker
}

export async function collect(tail: Tail, output: string, csTopics: CommandServiceChaosTopics, expected: { records: number; sent: ChaosRequest[]; envelopeIds: string[] }, progress: Progress, sagas: SagaChaos): Promise<Collected> {
  const topology = new ChaosTracker(expected.records)
  const service = new CommandServiceChaosTracker(expected.sent, expected.envelopeIds)
  let absorbed = 0
  const absorb = async () => {
    await tail.caughtUp()
    for (; absorbed < tail.records.length; absorbed++) {
      const { record, visibleAt } = tail.records[absorbed] as TailedRecord
      if (record.topic === output) topology.add(record, visibleAt)
      else if (record.topic === sagas.events) sagas.tracker.add(record)
      else addCommandServiceRecord(service, csTopics, record, visibleAt)
    }
  }
  // Until everything expected is there (or the time is up: what is missing then fails the verdict)...
  const deadline = Date.now() + 240_000
  for (await absorb(); !(topology.complete() && service.complete() && sagas.tracker.complete()) && Date.now() < deadline; await absorb()) await sleep(2000)
  const waiting = [...(topology.complete() ? [] : ['chaos topology outputs']), ...(service.complete() ? [] : ['command service records']), ...(sagas.tracker.complete() ? [] : ['saga ends'])]
  progress.step(`${waiting.length === 0 ? 'everything expected is there' : `time is up, still missing: ${waiting.join(', ')}`}; reading to the end offsets again after a pause`)
  // ...then, after a pause, every partition again up to its end offset, so a late duplicate or a second
  // outcome on any partition is counted too.
  await sleep(3000)
  await absorb()
  return { topology, service }
}
